"""Page and screen messages are page views: /page, /v1/page, /v1/screen and the batch routes count in the web
stats, their site and path taken from the URL, with the bot rules of beacon hits."""

from __future__ import annotations

from typing import Any

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0 Safari/537.36"


async def stats(client: Any, auth: Any, name: str, site: str, **params: str) -> Any:
    response = await client.get(f"/analytics/api/{name}", params={"site": site, **params}, headers=auth["secret"])
    assert response.status == 200, await response.text()
    return (await response.json())["data"]


async def test_page_and_screen_messages_count_in_web_stats(client: Any, auth: Any, drain: Any) -> None:
    site = "pages.example"
    # a server library's page calls (its own user agent says nothing of the visitor): page views
    for n in range(3):
        response = await client.post("/analytics/page", headers=auth["write"], json={
            "anonymous_id": f"visitor-{n % 2}", "properties": {"url": f"https://{site}/p/{n}?ref=x"}})
        assert response.status == 202
    response = await client.post("/analytics/v1/page", headers=auth["write"], json={
        "userId": "u1", "context": {"page": {"url": f"https://www.{site}/p/0", "referrer": "https://news.example/"},
                                    "userAgent": CHROME}})
    assert response.status == 200
    response = await client.post("/analytics/v1/screen", headers=auth["write"], json={
        "userId": "u1", "name": "Settings", "properties": {"url": f"https://{site}/settings"}})
    assert response.status == 200
    response = await client.post("/analytics/v1/batch", headers=auth["write"], json={"batch": [
        {"type": "page", "anonymousId": "visitor-9", "properties": {"url": f"https://{site}/p/1"}}]})
    assert response.status == 200
    # bots, by the same rules as beacon hits: the visitor's user agent in the context, or the request's own when
    # a browser sent it
    await client.post("/analytics/page", headers=auth["write"], json={
        "anonymous_id": "crawler", "properties": {"url": f"https://{site}/p/0"}, "context": {"userAgent": GOOGLEBOT}})
    await client.post("/analytics/v1/p", headers={**auth["write"], "User-Agent": HEADLESS}, json={
        "anonymousId": "headless", "properties": {"url": f"https://{site}/p/0"}})
    await drain()

    # sent without a session id, each page view belongs to the session derived the beacon's way (per visitor and day)
    assert await stats(client, auth, "pageviews", site) == {"pageviews": 5, "sessions": 4, "visitors": 4}
    pages = {row["path"]: row["pageviews"] for row in await stats(client, auth, "pages", site)}
    assert pages == {"/p/0": 1, "/p/1": 2, "/p/2": 1, "/settings": 1}
    assert await stats(client, auth, "pageviews", f"www.{site}") == {"pageviews": 1, "sessions": 1, "visitors": 1}
    assert (await stats(client, auth, "referrers", f"www.{site}"))[0]["referrer"] == "news.example"
    with_bots = await stats(client, auth, "pageviews", site, include_bots="true")
    assert with_bots["pageviews"] == 7
    sites = await client.get("/analytics/sites", headers=auth["secret"])
    assert {row["site"]: row["pageviews"] for row in (await sites.json())["data"]} == {site: 5, f"www.{site}": 1}
