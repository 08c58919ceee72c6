"""The saved-object helper that /alerts and /reports declare their routes through (api/saved.py,
store/saved_objects.py): the route table carries their typed bodies and answers, the OpenAPI document reads them
from there, a PATCH body is the body Struct with every field optional (refusing what the whole would refuse, with
the same message), and the store's statements hold parameters only."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from nself_analytics import api
from nself_analytics.api import alerts as alert_routes
from nself_analytics.api import scheduled_reports as report_routes
from nself_analytics.api.saved import patch_of
from nself_analytics.model.alert_spec import AlertBody
from nself_analytics.model.report_spec import ReportBody
from nself_analytics.store.alerts import ALERTS
from nself_analytics.store.scheduled_reports import REPORTS
from nself_analytics.web.openapi import document

from .alerts_support import create_alert, signup_alert


@pytest.mark.parametrize(("plural", "body", "answer"), [("alerts", AlertBody, "AlertAnswer"),
                                                        ("reports", ReportBody, "ReportAnswer")])
def test_routes_and_openapi_come_from_the_structs(plural: str, body: type[msgspec.Struct], answer: str) -> None:
    routes = {route.key: route for route in api.ROUTES if route.key[1].startswith(f"/{plural}")}
    assert routes[("POST", f"/{plural}")].body is body and routes[("POST", f"/{plural}")].status == 201
    patch = routes[("PATCH", f"/{plural}/{{id}}")].body
    assert patch is not None and patch.__name__ == f"{body.__name__}Patch"
    doc = document("http://x/analytics", api.ROUTES)
    create = doc["paths"][f"/{plural}"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == \
        {"$ref": f"#/components/schemas/{body.__name__}"}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == \
        {"$ref": f"#/components/schemas/{answer}"}
    assert {"400", "409", "413"} <= set(create["responses"])
    update = doc["paths"][f"/{plural}/{{id}}"]["patch"]
    assert update["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(f"{body.__name__}Patch")
    assert "404" in update["responses"]
    schemas = doc["components"]["schemas"]
    view = schemas[answer]["properties"][plural[:-1]]["$ref"].rsplit("/", 1)[1]
    assert {"id", "name", "enabled", "channels"} <= set(schemas[view]["required"]) | set(schemas[view]["properties"])
    assert "id" in schemas[view]["required"] and not schemas[f"{body.__name__}Patch"].get("required")


def test_a_patch_refuses_what_the_whole_refuses() -> None:
    patch = patch_of(AlertBody)
    assert msgspec.structs.asdict(msgspec.convert({}, patch)) == {f: msgspec.UNSET for f in AlertBody.__struct_fields__}
    for bad in ({"name": 5}, {"name": "x" * 201}, {"interval": "yearly"}, {"condition": {"upper": "ten"}},
                {"extra": 1}, {"name": None}):
        with pytest.raises(msgspec.ValidationError) as partial:
            msgspec.convert(bad, patch)
        with pytest.raises(msgspec.ValidationError) as whole:
            msgspec.convert({**signup_alert(), **bad}, AlertBody)
        assert str(partial.value) == str(whole.value)


def test_statements_hold_parameters_only() -> None:
    for table, name in ((ALERTS, "np_analytics_alerts"), (REPORTS, "np_analytics_reports")):
        for key, sql in table.sql.items():
            assert name in sql and "'" not in sql and ";" not in sql, (key, sql)
            assert "%(account)s" in sql or key == "due", key
    assert "last_period_start = CASE" in ALERTS.sql["update"] and "CASE" not in REPORTS.sql["update"]


async def test_patch_bodies_through_the_route_table(client: Any, auth: Any) -> None:
    alert = await create_alert(client, auth, **signup_alert())
    url = f"/analytics/alerts/{alert['id']}"
    for raw, message in ((b"[]", "The JSON body must be an object"), (b"{", "Invalid JSON body")):
        answer = await client.patch(url, headers=auth["secret"], data=raw)
        assert (answer.status, (await answer.json())["message"]) == (400, message)
    posted = await client.post("/analytics/alerts", headers=auth["secret"], json={**signup_alert(), "name": 5})
    patched = await client.patch(url, headers=auth["secret"], json={"name": 5})
    assert posted.status == patched.status == 400
    assert (await posted.json()) == (await patched.json()) == {"status": "error",
                                                               "message": "Expected `str`, got `int` - at `$.name`"}
    renamed = await client.patch(url, headers=auth["secret"], json={"name": "Renamed", "enabled": False})
    shown = (await renamed.json())["alert"]
    assert (shown["name"], shown["enabled"]) == ("Renamed", False)
    assert shown["series"] == {"kind": "trend", "event": "signup"}
    assert (await client.patch("/analytics/alerts/" + "9" * 25, headers=auth["secret"], json={})).status == 404
    assert (await client.post("/analytics/reports/" + "9" * 25 + "/send", headers=auth["secret"])).status == 404
    assert alert_routes.KIND.cap == alert_routes.MAX_ALERTS_PER_ACCOUNT
    assert report_routes.KIND.cap == report_routes.MAX_REPORTS_PER_ACCOUNT
