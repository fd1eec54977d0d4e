"""A small fake of the HubSpot, Close and Zoho contact-read endpoints, for tests (never production).

Start it with ``python -m fake_crm --port N`` (``fake_crm.server.serve``); drive it from tests with
``fake_crm.testing`` (``running_fake_crm()``, ``FakeCrmControl``): seed contacts in each CRM's own JSON
shape, read the request log, inject faults (429 with ``Retry-After``, 500, …).
"""
