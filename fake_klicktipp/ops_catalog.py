"""The definition operations: data fields, opt-in processes (lists) and tags."""

from __future__ import annotations

from fake_klicktipp.accounts import AccountView
from fake_klicktipp.errors import Msg, Refused
from fake_klicktipp.wire import ApiRequest, Reply, ok, optional_id, optional_text, required_id, text_arg


def _path_id(req: ApiRequest, missing: Msg) -> int:
    found = optional_id(req.param, Refused(404, missing))
    if found is None:
        raise Refused(404, missing)
    return found


def field_index(view: AccountView, _req: ApiRequest) -> Reply:
    """``GET /field``: key → label."""
    return ok(view.catalog.field_labels())


def field_retrieve(view: AccountView, req: ApiRequest) -> Reply:
    """``GET /field/{id}`` with the id without its ``field`` prefix."""
    field = view.catalog.field(req.param or "")
    return ok({"id": field.short_id, "name": field.label})


def field_delete(view: AccountView, req: ApiRequest) -> Reply:
    """Legacy ``DELETE /field/{id}`` (not in the spec; id without ``field``): ``[true]``."""
    view.catalog.delete_field(req.param or "")
    return ok([True])


def list_index(view: AccountView, _req: ApiRequest) -> Reply:
    """``GET /list``: id → name."""
    return ok(view.catalog.list_names())


def list_retrieve(view: AccountView, req: ApiRequest) -> Reply:
    """``GET /list/{id}``: the opt-in process with its flags."""
    optin = view.catalog.optin(_path_id(req, Msg.LIST_NOT_FOUND))
    return ok(
        {
            "listid": optin.id,
            "name": optin.name,
            "usesingleoptin": optin.single_opt_in,
            "pendingurl": optin.pending_url,
            "thankyouurl": optin.thankyou_url,
            "resendconfirmationemail": optin.resend_confirmation_email,
            "usechangeemail": optin.use_change_email,
        }
    )


def list_redirect(view: AccountView, req: ApiRequest) -> Reply:
    """``POST /list/redirect``: the pending URL until the contact confirmed, then the thank-you URL."""
    optin = view.catalog.optin(required_id(req.body, "listid", Refused(404, Msg.LIST_NOT_FOUND)))
    contact = view.store.by_email(text_arg(req.body, "email"))
    if contact is None:
        raise Refused(404, Msg.CONTACT_NOT_FOUND)
    return ok([optin.pending_url if contact.status == "pending" else optin.thankyou_url])


def tag_index(view: AccountView, _req: ApiRequest) -> Reply:
    """``GET /tag``: manual tags only."""
    return ok(view.catalog.manual_tag_names())


def tag_create(view: AccountView, req: ApiRequest) -> Reply:
    """``POST /tag``: ``[newId]``."""
    name = optional_text(req.body, "name") or ""
    tag = view.catalog.create_tag(name, optional_text(req.body, "text") or "")
    return ok([tag.id])


def tag_retrieve(view: AccountView, req: ApiRequest) -> Reply:
    """``GET /tag/{id}``: ``{tagid, name, text}``."""
    tag = view.catalog.tag(_path_id(req, Msg.TAG_NOT_FOUND))
    return ok({"tagid": str(tag.id), "name": tag.name, "text": tag.text})


def tag_update(view: AccountView, req: ApiRequest) -> Reply:
    """``PUT /tag/{id}``: new name and/or text."""
    name, text = optional_text(req.body, "name"), optional_text(req.body, "text")
    view.catalog.update_tag(_path_id(req, Msg.TAG_NOT_FOUND), name=name, text=text)
    return ok([True])


def tag_delete(view: AccountView, req: ApiRequest) -> Reply:
    """``DELETE /tag/{id}``: also takes the tag off every contact."""
    view.catalog.delete_tag(_path_id(req, Msg.TAG_NOT_FOUND))
    return ok([True])
