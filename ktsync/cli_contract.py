"""`ktsync contract`: the message contract v1, for the teams whose services send messages."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add the ``contract`` group to the ``ktsync`` command."""

    @main.group()
    def contract() -> None:
        """The message contract v1 that producers send (README: "The message contract v1")."""

    @contract.command("schema")
    def schema() -> None:
        """Print the JSON Schema (draft 2020-12) of contract v1.

        It is generated from the contract ktsync validates with, and equal to the
        producers/contract-v1.schema.json that ships with the package. Validate a message with it
        in any language, e.g. with ajv (Node) or jsonschema (Python).
        """
        from ktsync.core.contract_schema import contract_schema_text

        click.echo(contract_schema_text(), nl=False)
