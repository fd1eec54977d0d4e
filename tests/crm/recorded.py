"""Answers as the CRMs send them (shapes from their API references; values invented)."""

from __future__ import annotations

from typing import Any, Final

HUBSPOT_CONTACT: Final[dict[str, Any]] = {
    "id": "501",
    "properties": {
        "city": "Berlin",
        "company": "Shop GmbH",
        "country": None,
        "createdate": "2026-11-20T08:12:31.418Z",
        "date_of_birth": "1993-12-08",
        "email": "Alex.Example@Shop.Example",
        "firstname": "Alex",
        "hs_lead_status": "OPEN",
        "hs_object_id": "501",
        "lastmodifieddate": "2026-11-22T10:00:00.052Z",
        "lastname": "Example",
        "lead_value": "19.99",
        "lifecyclestage": "customer",
        "lists": "Newsletter;Webinar Herbst;",
        "mobilephone": "",
        "phone": "+49 30 1234567",
        "website": "https://alex.example",
        "zip": "10115",
        "interests": "Tee;Kaffee",
    },
    "createdAt": "2026-11-20T08:12:31.418Z",
    "updatedAt": "2026-11-22T10:00:00.052Z",
    "archived": False,
}

CLOSE_CONTACT: Final[dict[str, Any]] = {
    "id": "cont_8Ks1yQa3Vn1YgU0sP5Ukg8eKbb5XoK9LiLDkdyt5Hsy",
    "lead_id": "lead_IIDHIStmFDYhRPAsGPGmHtKYtqsnGKmwg0AaJgWlgsQ",
    "name": "Anna Maria Schmidt",
    "title": "Einkauf",
    "emails": [
        {"type": "home", "email": "anna@home.example"},
        {"type": "office", "email": "anna.schmidt@shop.example"},
    ],
    "phones": [
        {"type": "mobile", "phone": "+491701234567", "phone_formatted": "+49 170 1234567"},
        {"type": "office", "phone": "+49301234567", "phone_formatted": "+49 30 1234567"},
    ],
    "urls": [{"type": "url", "url": "https://anna.example"}],
}

CLOSE_LEAD: Final[dict[str, Any]] = {
    "status_label": "Qualified",
    "display_name": "Shop GmbH",
    "url": "https://shop.example",
    "addresses": [
        {
            "label": "business",
            "address_1": "Invalidenstr. 1",
            "city": "Berlin",
            "state": "",
            "zipcode": "10115",
            "country": "DE",
        }
    ],
}

ZOHO_CONTACT: Final[dict[str, Any]] = {
    "data": [
        {
            "Owner": {"name": "Patricia Boyle", "id": "4876876000000225013", "email": "p.boyle@zylker.com"},
            "Email": "kris@zylker.example",
            "First_Name": "Kris",
            "Last_Name": "Marrier",
            "Phone": "555-555-5555",
            "Mobile": "",
            "Mailing_City": "Frankfurt",
            "Mailing_Zip": "60311",
            "Mailing_Country": "Germany",
            "Date_of_Birth": "1990-05-14",
            "Lead_Source": "Trade Show",
            "Account_Name": {"name": "Zylker", "id": "4876876000000624001"},
            "Title": None,
            "id": "4876876000000624019",
        }
    ]
}
