"""Watched accounts through the HTTP API."""

from fastapi.testclient import TestClient


def test_list_gives_the_configured_accounts(client: TestClient) -> None:
    accounts = client.get("/v1/accounts").json()

    assert [(a["handle"], a["kind"]) for a in accounts] == [
        ("transnordrail", "company"),
        ("transnordaide", "company"),
        ("camilledurand_ceo", "executive"),
    ]


def test_register_an_account_and_ingest_for_it(client: TestClient) -> None:
    created = client.post(
        "/v1/accounts",
        json={
            "handle": "@TransNord_FR",
            "kind": "company",
            "display_name": "TransNord France",
            "x_user_id": "123",
        },
    )

    assert created.status_code == 201
    assert created.json()["handle"] == "transnord_fr"
    mention = {
        "source": "api",
        "external_id": "9",
        "account": "TRANSNORD_FR",
        "author": {"handle": "a"},
        "text": "Le train de 8h12 est supprimé, encore une fois.",
    }
    assert client.post("/v1/mentions", json=mention).status_code == 201


def test_a_handle_already_watched_is_a_409(client: TestClient) -> None:
    response = client.post(
        "/v1/accounts", json={"handle": "transnordrail", "kind": "company", "display_name": "X"}
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_an_invalid_account_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/v1/accounts", json={"handle": "bad handle!", "kind": "ceo", "display_name": ""}
    )

    assert response.status_code == 422
    fields = {tuple(d["loc"]) for d in response.json()["error"]["details"]}
    assert fields == {("body", "handle"), ("body", "kind"), ("body", "display_name")}
