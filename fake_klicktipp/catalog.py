"""Business rules for the account's definitions: tags (manual and smart), opt-in processes, data fields."""

from __future__ import annotations

from fake_klicktipp.errors import FakeError, Msg, Refused, Rejected
from fake_klicktipp.model import DataField, OptInProcess, State, Tag


class Catalog:
    """Tag, opt-in-process and data-field operations on one ``State``."""

    def __init__(self, state: State) -> None:
        self._state = state

    # -- data fields ---------------------------------------------------------------------------
    def field_labels(self) -> dict[str, str]:
        """``GET /field``: key → label, in registry order."""
        return {key: field.label for key, field in self._state.fields.items()}

    def field(self, ref: str) -> DataField:
        """A field by its short id (``FirstName``, ``100001``) or full key; 404 when unknown."""
        key = ref if ref.startswith("field") and ref in self._state.fields else f"field{ref}"
        found = self._state.fields.get(key)
        if found is None:
            raise Refused(404, Msg.FIELD_NOT_FOUND)
        return found

    def delete_field(self, ref: str) -> None:
        """Delete a data field (legacy ``DELETE /field/{id}``) and its value on every contact."""
        key = self.field(ref).key
        del self._state.fields[key]
        for contact in self._state.contacts.values():
            contact.fields.pop(key, None)

    # -- opt-in processes ----------------------------------------------------------------------
    def list_names(self) -> dict[str, str]:
        """``GET /list``: id → name (the default DOI process has an empty name)."""
        return {str(optin.id): optin.name for optin in self._state.lists.values()}

    def optin(self, listid: int) -> OptInProcess:
        """An opt-in process for ``GET /list/{id}`` and redirects; 404 when unknown."""
        found = self._state.lists.get(listid)
        if found is None:
            raise Refused(404, Msg.LIST_NOT_FOUND)
        return found

    def optin_for_subscribe(self, listid: int | None) -> OptInProcess:
        """The process a subscribe runs: the given one (406 error 402 if unknown) or the default DOI."""
        chosen = self._state.default_list_id if listid is None else listid
        found = self._state.lists.get(chosen)
        if found is None:
            raise Rejected(402)
        return found

    # -- tags ----------------------------------------------------------------------------------
    def manual_tag_names(self) -> dict[str, str]:
        """``GET /tag``: manual tags only, id → name."""
        return {str(tag.id): tag.name for tag in self._state.tags.values() if not tag.smart}

    def tag(self, tag_id: int) -> Tag:
        """Any tag (manual or smart) by id; 404 when unknown."""
        found = self._state.tags.get(tag_id)
        if found is None:
            raise Refused(404, Msg.TAG_NOT_FOUND)
        return found

    def assignable_tag(self, tag_id: int, *, unknown: FakeError) -> Tag:
        """A manual tag that tag/subscribe may assign; ``unknown`` if there is none, 406 error 403 if smart."""
        found = self._state.tags.get(tag_id)
        if found is None:
            raise unknown
        if found.smart:
            raise Rejected(403)
        return found

    def create_tag(self, name: str, text: str) -> Tag:
        """A new manual tag; names are unique across manual tags and SmartTags (case-insensitive)."""
        name = name.strip()
        if not name:
            raise Refused(406, Msg.TAG_NOT_CREATED)
        self._ensure_unique(name, except_id=None)
        tag = Tag(id=self._state.next_tag_id, name=name, text=text, smart=False)
        self._state.tags[tag.id] = tag
        self._state.next_tag_id += 1
        return tag

    def update_tag(self, tag_id: int, *, name: str | None, text: str | None) -> None:
        """Rename and/or re-describe a manual tag."""
        tag = self._manual_tag(tag_id)
        if name is not None:
            name = name.strip()
            if not name:
                raise Refused(406, Msg.TAG_NOT_CREATED)
            self._ensure_unique(name, except_id=tag_id)
            tag.name = name
        if text is not None:
            tag.text = text

    def delete_tag(self, tag_id: int) -> None:
        """Delete a manual tag and take it off every contact."""
        self._manual_tag(tag_id)
        del self._state.tags[tag_id]
        for contact in self._state.contacts.values():
            contact.tags.pop(tag_id, None)

    def _manual_tag(self, tag_id: int) -> Tag:
        tag = self.tag(tag_id)
        if tag.smart:  # SmartTags are system-managed; the tag API does not change them
            raise Refused(404, Msg.TAG_NOT_FOUND)
        return tag

    def _ensure_unique(self, name: str, *, except_id: int | None) -> None:
        folded = name.casefold()
        for tag in self._state.tags.values():
            if tag.id != except_id and tag.name.casefold() == folded:
                raise Refused(406, Msg.TAG_EXISTS, name=name)
