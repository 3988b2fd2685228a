"""Health probe shapes."""

import marshmallow as ma


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True)


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"description": "`ready` or `unavailable`"})
    checks = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.String(),
        metadata={"description": "`ok` or `error: <kind>` for `database` and `redis`"},
    )
