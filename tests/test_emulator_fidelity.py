"""The emulator's fidelity rules, one test per rule, over real loopback HTTP.

Each test asserts something the emulator got wrong before (commit 08317fb) or would get wrong
if the rule were dropped: the token endpoint's client styles, callbacks that come from the
app's registration, token lifetimes, the world file, and several users with their own sites.
"""

from __future__ import annotations

import base64
import json
import re
from html import unescape
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import httpx
import pytest

from atlassian_playbook.emulator import Emulator, WorldError

from .test_emulator import site_id

CALLBACK = "http://127.0.0.1:8765/callback"
OTHER_CALLBACK = "http://localhost:8765/callback"  # also registered on the default app
ACME, GLOBEX, INITECH = "acme", "globex", "initech"
ADA, GRACE = "5b10ac8d82e05b22cc7d4ef5", "5c3f9b2e1d4a7e0012a4b6c8"
DAY = 86400
UNAUTHORIZED = {"error": "access_denied", "error_description": "Unauthorized"}
INVALID_CODE = {"error": "invalid_grant", "error_description": "Invalid authorization code"}
STYLES = ("json", "form", "form+basic", "json+basic")


# --- fixtures and helpers ----------------------------------------------------------------------


def get_authorize(emu, http, client=None, scopes="read:me offline_access",
                  redirect_uri=CALLBACK, **extra) -> httpx.Response:
    client = client or emu.default_client
    params = {
        "audience": "api.atlassian.com",
        "client_id": client.client_id,
        "scope": scopes,
        "redirect_uri": redirect_uri,
        "state": "state-123",
        "response_type": "code",
        "prompt": "consent",
        **extra,
    }
    return http.get(f"{emu.auth_base_url}/authorize", params=params)


def decide(emu, http, page: str, site: str) -> httpx.Response:
    consent_request = re.search(r'name="consent_request" value="([^"]+)"', page).group(1)
    form = {"consent_request": consent_request, "decision": "accept", "site": site}
    return http.post(f"{emu.auth_base_url}/authorize/decision", data=form)


def try_consent(emu, http, site=ACME, client=None, scopes="read:me offline_access",
                redirect_uri=CALLBACK, user=None) -> httpx.Response:
    """The consent page, then Accept for ``site``: the decision's answer."""
    extra = {"emulator_user": user} if user else {}
    page = get_authorize(emu, http, client, scopes, redirect_uri, **extra)
    assert page.status_code == 200, page.text
    return decide(emu, http, page.text, site_id(emu, site))


def consent(emu, http, site=ACME, client=None, scopes="read:me offline_access",
            redirect_uri=CALLBACK, user=None) -> str:
    """Through the consent page as a person would; the code."""
    answer = try_consent(emu, http, site, client, scopes, redirect_uri, user)
    assert answer.status_code == 302, page_text(answer)
    location = answer.headers["location"]
    assert location.startswith(redirect_uri)
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["state"] == "state-123"
    return query["code"]


def basic(client_id: str, secret: str, *, encode: bool = True) -> str:
    """HTTP Basic client authentication; RFC 6749 §2.3.1 form-URL-encodes both parts first."""
    if encode:
        client_id, secret = quote_plus(client_id, safe=""), quote_plus(secret, safe="")
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_call(emu, http, style: str, params: dict, client=None, *, secret: str | None = None,
               client_id: str | None = None) -> httpx.Response:
    """POST /oauth/token in one of the client styles, the credentials where the style puts
    them (in the body, or in HTTP Basic with none in the body)."""
    client = client or emu.default_client
    client_id = client.client_id if client_id is None else client_id
    secret = client.client_secret.reveal() if secret is None else secret
    body, headers = dict(params), {}
    if style.endswith("+basic"):
        headers["Authorization"] = basic(client_id, secret)
    else:
        body.update(client_id=client_id, client_secret=secret)
    url = f"{emu.auth_base_url}/oauth/token"
    if style.startswith("json"):
        return http.post(url, json=body, headers=headers)
    return http.post(url, data=body, headers=headers)


def code_params(code: str, redirect_uri: str = CALLBACK) -> dict:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}


def refresh_params(refresh_token: str) -> dict:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


def login(emu, http, site=ACME, client=None, scopes="read:me offline_access",
          user=None) -> dict:
    code = consent(emu, http, site, client, scopes, user=user)
    response = token_call(emu, http, "json", code_params(code), client)
    assert response.status_code == 200, response.text
    return response.json()


def refresh(emu, http, refresh_token: str, client=None) -> httpx.Response:
    return token_call(emu, http, "json", refresh_params(refresh_token), client)


def api_get(emu, http, path: str, token: str) -> httpx.Response:
    return http.get(f"{emu.api_base_url}{path}", headers={"Authorization": f"Bearer {token}"})


def me_status(emu, http, token: str) -> int:
    return api_get(emu, http, "/me", token).status_code


def page_text(response: httpx.Response) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.text)))


def assert_error_page(response: httpx.Response, *needles: str, code: str | None = None) -> None:
    """Atlassian's consent-side failures: a 400 HTML page, never a redirect to the app."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    text = page_text(response)
    assert "Something went wrong" in text
    for needle in needles:
        assert needle in text, text
    if code is not None:
        assert re.search(rf'id="error-code">{re.escape(code)}<', response.text), text


# --- the token endpoint's client styles ---------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
def test_code_exchange_and_refresh_succeed_in_every_client_style(emu, http, style):
    answer = token_call(emu, http, style, code_params(consent(emu, http)))
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    assert me_status(emu, http, tokens["access_token"]) == 200
    rotated = token_call(emu, http, style, refresh_params(tokens["refresh_token"]))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != tokens["refresh_token"]
    assert me_status(emu, http, rotated.json()["access_token"]) == 200


def test_basic_credentials_are_form_url_decoded(emu, http):
    secret = "a:b+c/d e%f-0123456789"  # every character RFC 6749 §2.3.1 makes us encode
    special = emu.register_client(client_id="special-app", client_secret=secret)
    # Percent-encoded, as the RFC says: accepted, whether the body is a form or JSON.
    for style in ("form+basic", "json+basic"):
        code = consent(emu, http, client=special)
        answer = token_call(emu, http, style, code_params(code), special)
        assert answer.status_code == 200, answer.text
    # Sent raw, '+' is read as a space (form decoding): the secret is wrong.
    plus = emu.register_client(client_id="plus-app", client_secret="plus+secret-0123456789")
    code = consent(emu, http, client=plus)
    url = f"{emu.auth_base_url}/oauth/token"
    raw = basic("plus-app", "plus+secret-0123456789", encode=False)
    answer = http.post(url, data=code_params(code), headers={"Authorization": raw})
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)
    # ...and the same code goes through once the '+' is encoded (nothing else differs).
    encoded = basic("plus-app", "plus+secret-0123456789")
    answer = http.post(url, data=code_params(code), headers={"Authorization": encoded})
    assert answer.status_code == 200, answer.text
    # The other side of the same rule: a raw '+' stands for a space in the secret.
    spaced = emu.register_client(client_id="space-app", client_secret="with space-0123456789")
    code = consent(emu, http, client=spaced)
    raw = basic("space-app", "with+space-0123456789", encode=False)
    answer = http.post(url, data=code_params(code), headers={"Authorization": raw})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("case", "status", "expected"),
    [
        ("wrong secret", 401, UNAUTHORIZED),
        ("missing grant_type", 400,
         {"error": "invalid_request",
          "error_description": "Missing required parameter: grant_type"}),
        ("unsupported grant type", 400,
         {"error": "unsupported_grant_type",
          "error_description": "Unsupported grant type: password"}),
        ("bad code", 403, INVALID_CODE),
    ],
)
def test_every_client_style_gets_the_same_error(emu, http, case, status, expected):
    params = {
        "wrong secret": code_params("some-code"),
        "missing grant_type": {"code": "some-code", "redirect_uri": CALLBACK},
        "unsupported grant type": {"grant_type": "password", "username": "ada"},
        "bad code": code_params("not-a-code-of-this-emulator"),
    }[case]
    secret = "not-the-secret" if case == "wrong secret" else None
    answers = {}
    for style in STYLES:
        response = token_call(emu, http, style, params, secret=secret)
        answers[style] = (response.status_code, response.json())
    assert answers == dict.fromkeys(STYLES, (status, expected))


def test_basic_and_body_credentials_that_disagree_are_refused(emu, http):
    client = emu.default_client
    good = basic(client.client_id, client.client_secret.reveal())
    url = f"{emu.auth_base_url}/oauth/token"
    other = emu.register_client()  # a real app: its credentials would work on their own
    for body_credentials in (
        {"client_id": other.client_id},
        {"client_secret": other.client_secret.reveal()},
        {"client_id": other.client_id, "client_secret": other.client_secret.reveal()},
    ):
        for send in ("data", "json"):
            body = {**code_params(consent(emu, http)), **body_credentials}
            answer = http.post(url, **{send: body}, headers={"Authorization": good})
            assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED), body_credentials


def test_basic_and_an_equal_body_client_id_are_accepted(emu, http):
    client = emu.default_client
    good = basic(client.client_id, client.client_secret.reveal())
    url = f"{emu.auth_base_url}/oauth/token"
    for extra in ({"client_id": client.client_id},
                  {"client_id": client.client_id,
                   "client_secret": client.client_secret.reveal()}):
        body = {**code_params(consent(emu, http)), **extra}
        answer = http.post(url, data=body, headers={"Authorization": good})
        assert answer.status_code == 200, answer.text


def test_a_repeated_form_parameter_is_invalid_request(emu, http):
    client = emu.default_client
    code = consent(emu, http)
    fields = [*code_params(code).items(), ("client_id", client.client_id),
              ("client_secret", client.client_secret.reveal())]
    url = f"{emu.auth_base_url}/oauth/token"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for repeated in (("grant_type", "authorization_code"), ("client_id", client.client_id)):
        answer = http.post(url, content=urlencode([*fields, repeated]), headers=form)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "invalid_request"
        assert repeated[0] in answer.json()["error_description"]
    # The same form without the repetition is fine (the code was not consumed above).
    assert http.post(url, content=urlencode(fields), headers=form).status_code == 200


def test_an_unsupported_content_type_names_both_accepted_types(emu, http):
    client = emu.default_client
    body = {**code_params(consent(emu, http)), "client_id": client.client_id,
            "client_secret": client.client_secret.reveal()}
    answer = http.post(f"{emu.auth_base_url}/oauth/token", content=urlencode(body),
                       headers={"Content-Type": "text/plain"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    description = answer.json()["error_description"]
    assert "application/json" in description
    assert "application/x-www-form-urlencoded" in description


@pytest.mark.parametrize(
    "header",
    ["Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon-here").decode()],
)
def test_a_malformed_basic_header_is_401_even_with_good_body_credentials(emu, http, header):
    client = emu.default_client
    body = {**code_params(consent(emu, http)), "client_id": client.client_id,
            "client_secret": client.client_secret.reveal()}
    answer = http.post(f"{emu.auth_base_url}/oauth/token", data=body,
                       headers={"Authorization": header})
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)


# --- callbacks come from the app's registration -------------------------------------------------


def test_a_trailing_slash_is_a_redirect_uri_mismatch_until_registered(emu, http):
    slashed = CALLBACK + "/"
    assert_error_page(get_authorize(emu, http, redirect_uri=slashed), slashed,
                      code="redirect_uri_mismatch")
    # The console's Authorization tab: add the URL, and it passes (and the old one stops).
    emu.set_callback_urls([slashed])
    code = consent(emu, http, redirect_uri=slashed)
    answer = token_call(emu, http, "json", code_params(code, slashed))
    assert answer.status_code == 200, answer.text
    assert_error_page(get_authorize(emu, http, redirect_uri=CALLBACK),
                      code="redirect_uri_mismatch")


def test_a_code_exchanged_with_another_redirect_uri_is_invalid_authorization_code(emu, http):
    code = consent(emu, http, redirect_uri=CALLBACK)
    for other in (OTHER_CALLBACK, CALLBACK + "/"):
        answer = token_call(emu, http, "json", code_params(code, other))
        assert answer.status_code == 403
        assert answer.json() == INVALID_CODE


# --- lifetimes ----------------------------------------------------------------------------------


def test_the_old_access_token_works_ten_minutes_after_a_refresh(emu, http):
    first = login(emu, http)
    second = refresh(emu, http, first["refresh_token"]).json()
    emu.advance_clock(599)
    assert me_status(emu, http, first["access_token"]) == 200
    emu.advance_clock(2)
    assert me_status(emu, http, first["access_token"]) == 401
    assert me_status(emu, http, second["access_token"]) == 200


def test_reuse_outside_the_leeway_kills_the_grants_access_tokens(emu, http):
    first = login(emu, http)
    second = refresh(emu, http, first["refresh_token"]).json()
    emu.advance_clock(11 * 60)
    assert me_status(emu, http, second["access_token"]) == 200
    reuse = refresh(emu, http, first["refresh_token"])
    assert reuse.status_code == 403 and reuse.json()["error"] == "invalid_grant"
    assert me_status(emu, http, second["access_token"]) == 401
    assert refresh(emu, http, second["refresh_token"]).status_code == 403


def test_revoke_kills_the_users_access_tokens_only(emu, http):
    ada = login(emu, http)
    grace = login(emu, http, user="grace")
    assert me_status(emu, http, ada["access_token"]) == 200
    assert emu.revoke(user="grace") == 1
    assert me_status(emu, http, grace["access_token"]) == 401
    assert me_status(emu, http, ada["access_token"]) == 200
    assert emu.revoke() == 1  # the consenting user: ada
    assert me_status(emu, http, ada["access_token"]) == 401


def test_the_365_days_run_from_the_first_consent(emu, http):
    login(emu, http, site=ACME)
    emu.advance_clock(200 * DAY)
    # Consenting again (another site) adds to the same grant; its code gives a new family.
    newest = login(emu, http, site=GLOBEX)["refresh_token"]
    for days in (82, 82):  # refreshed within 90 idle days: only the absolute limit can bite
        emu.advance_clock(days * DAY)
        answer = refresh(emu, http, newest)
        assert answer.status_code == 200, answer.text
        newest = answer.json()["refresh_token"]
    emu.advance_clock(2 * DAY)  # 366 days after the first consent, 166 after the second
    answer = refresh(emu, http, newest)
    assert answer.status_code == 403
    assert answer.json()["error"] == "invalid_grant"


# --- the world ----------------------------------------------------------------------------------

CUSTOM_WORLD = """\
users:
  - account_id: 5f0000000000000000000001
    name: Alan Turing
    email: alan@example.com
    nickname: alan
  - account_id: 5f0000000000000000000002
    name: Joan Clarke
    email: joan@example.com
sites:
  - name: bletchley
    products:
      - jira
    members: [alan, 5f0000000000000000000002]  # a nickname or an account id
    projects:
      - key: HUT
        name: Hut Eight
    issues:
      - key: HUT-1
        summary: Break the code
        reporter: joan
apps:
  - name: Custom app
    client_id: custom-app
    owner: alan
    apis: [identity, jira]
    callback_urls:
      - http://127.0.0.1:9999/cb
"""


def test_the_default_world_has_two_users_and_sites_with_different_products(emu):
    assert len(emu.users) >= 2
    products = [site["products"] for site in emu.sites]
    assert len(products) >= 2
    assert ["jira", "confluence"] in products
    assert ["jira"] in products


@pytest.mark.parametrize("kind", ["yaml", "json"])
def test_a_custom_world_file(tmp_path, http, kind):
    import yaml

    path = tmp_path / f"world.{kind}"
    if kind == "yaml":
        path.write_text(CUSTOM_WORLD)
    else:
        path.write_text(json.dumps(yaml.safe_load(CUSTOM_WORLD), indent=2))
    with Emulator(world=path) as emu:
        assert [user["nickname"] for user in emu.users] == ["alan", "joan"]  # joan: from email
        assert [site["name"] for site in emu.sites] == ["bletchley"]
        client = emu.default_client
        assert client.client_id == "custom-app"
        assert client.redirect_uris == ("http://127.0.0.1:9999/cb",)
        assert client.apis == ("identity", "jira")
        code = consent(emu, http, site="bletchley", scopes="read:me read:jira-work",
                       redirect_uri="http://127.0.0.1:9999/cb")
        tokens = token_call(emu, http, "json",
                            code_params(code, "http://127.0.0.1:9999/cb")).json()
        me = api_get(emu, http, "/me", tokens["access_token"]).json()
        assert (me["name"], me["account_id"]) == ("Alan Turing", "5f0000000000000000000001")
        projects = api_get(emu, http, f"/ex/jira/{site_id(emu, 'bletchley')}"
                           "/rest/api/3/project/search", tokens["access_token"])
        assert [p["key"] for p in projects.json()["values"]] == ["HUT"]
        joan = get_authorize(emu, http, scopes="read:me", emulator_user="joan",
                             redirect_uri="http://127.0.0.1:9999/cb")
        assert "Joan Clarke" in page_text(joan) and "bletchley.atlassian.net" in joan.text
        # An API the world's app did not add fails at consent.
        assert_error_page(get_authorize(emu, http, scopes="read:confluence-space.summary",
                                        redirect_uri="http://127.0.0.1:9999/cb"),
                          code="invalid_scope")


def broken(what: str, replace: str, lines: str, wrong: int, where: str, words: str, **kw):
    """A world-file case: ``replace`` (a line of CUSTOM_WORLD) becomes ``lines``, of which
    the ``wrong``-th (0-based) is at fault; the error must name ``where`` and say ``words``."""
    return pytest.param(replace, lines, wrong, where, words, id=what, **kw)


BROKEN = [
    broken("unknown key", "    nickname: alan", "    nickname: alan\n    nick_name: al", 1,
           "users[0].nick_name", "unknown key 'nick_name'"),
    broken("product typo", "      - jira", "      - jira\n      - confluense", 1,
           "sites[0].products[1]", "'confluense' is not a product"),
    broken("issue of a missing project", "      - key: HUT-1", "      - key: ENIGMA-1", 0,
           "sites[0].issues[0].key", "ENIGMA-1 belongs to no project"),
    broken("owner not a user", "    owner: alan", "    owner: turing", 0,
           "apps[0].owner", "'turing' is not a user"),
    broken("callback with a fragment", "      - http://127.0.0.1:9999/cb",
           "      - http://127.0.0.1:9999/cb#top", 0, "apps[0].callback_urls[0]", "#fragment"),
    broken("duplicate site name, its own id", "apps:",
           "  - name: bletchley\n    id: 22222222-2222-4222-a222-222222222222\n"
           "    products: [jira]\napps:", 0, "sites[1].name", "name 'bletchley' is used twice"),
    broken("duplicate site name", "apps:", "  - name: bletchley\n    products: [jira]\napps:", 0,
           "sites[1].name", "name 'bletchley' is used twice"),
]


@pytest.mark.parametrize(("replace", "lines", "wrong", "where", "words"), BROKEN)
def test_world_errors_name_the_file_the_line_and_the_key(tmp_path, replace, lines, wrong,
                                                         where, words):
    original = CUSTOM_WORLD.splitlines()
    assert original.count(replace) == 1
    text = CUSTOM_WORLD.replace(replace + "\n", lines + "\n")
    line = original.index(replace) + wrong + 1  # 1-based
    path = tmp_path / "world.yaml"
    path.write_text(text)
    with pytest.raises(WorldError) as caught:
        Emulator(world=path)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert str(path) in message
    assert re.search(rf"\bline {line}\b", message), message
    assert where in message, message
    assert words in message, message


def test_a_json_world_error_names_the_line_too(tmp_path):
    import yaml

    world = yaml.safe_load(CUSTOM_WORLD)
    world["sites"][0]["products"] = ["jira", "jria"]
    text = json.dumps(world, indent=2)
    line = text.splitlines().index('        "jria"') + 1
    path = tmp_path / "world.json"
    path.write_text(text)
    with pytest.raises(WorldError) as caught:
        Emulator(world=path)
    message = str(caught.value)
    assert str(path) in message and "sites[0].products[1]" in message
    assert re.search(rf"\bline {line}\b", message), message


def test_a_yaml_syntax_error_names_the_file_and_the_line(tmp_path):
    text = CUSTOM_WORLD.replace("    name: Alan Turing", "    name: Alan: Turing")
    line = text.splitlines().index("    name: Alan: Turing") + 1
    path = tmp_path / "world.yaml"
    path.write_text(text)
    with pytest.raises(WorldError) as caught:
        Emulator(world=path)
    assert isinstance(caught.value, ValueError)
    assert str(path) in str(caught.value)
    assert re.search(rf"\bline {line}\b", str(caught.value)), str(caught.value)


def test_a_changed_world_file_reseeds_a_shared_state_file(tmp_path, http):
    world, state = tmp_path / "world.yaml", tmp_path / "emulator-state.json"
    world.write_text(CUSTOM_WORLD)
    with Emulator(world=world, state_path=state) as emu:
        code = consent(emu, http, site="bletchley", redirect_uri="http://127.0.0.1:9999/cb")
        tokens = token_call(emu, http, "json",
                            code_params(code, "http://127.0.0.1:9999/cb")).json()
        # The same file again: the same world, the token lives on.
        Emulator(world=world, state_path=state)
        assert me_status(emu, http, tokens["access_token"]) == 200
        # A changed file: a fresh world; grants and tokens are gone, the change is in.
        world.write_text(CUSTOM_WORLD.replace("Alan Turing", "Alan M. Turing"))
        Emulator(world=world, state_path=state)
        assert me_status(emu, http, tokens["access_token"]) == 401
        assert refresh(emu, http, tokens["refresh_token"]).status_code == 403
        assert emu.users[0]["name"] == "Alan M. Turing"


def test_set_callback_urls_persists_across_emulators_sharing_a_state_file(tmp_path, http):
    state = tmp_path / "emulator-state.json"
    new = "http://127.0.0.1:7000/oauth/callback"
    Emulator(state_path=state).set_callback_urls([new])
    with Emulator(state_path=state) as later:
        assert later.default_client.redirect_uris == (new,)
        assert get_authorize(later, http, redirect_uri=new).status_code == 200
        assert_error_page(get_authorize(later, http, redirect_uri=CALLBACK),
                          code="redirect_uri_mismatch")


# --- several users, their sites, and site and app policies --------------------------------------


def test_consent_user_is_who_me_returns(http):
    with Emulator(auto_consent=True, consent_user="grace") as emu:
        answer = get_authorize(emu, http)
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        tokens = token_call(emu, http, "json", code_params(code)).json()
        me = api_get(emu, http, "/me", tokens["access_token"]).json()
        assert (me["account_id"], me["nickname"]) == (GRACE, "grace")


def test_the_consent_page_lists_only_the_signed_in_users_sites(emu, http):
    def listed(page: httpx.Response) -> set[str]:
        assert page.status_code == 200, page.text
        return set(re.findall(r'<option value="([^"]+)">', page.text))

    grace = get_authorize(emu, http, emulator_user="grace")
    assert "Grace Hopper" in page_text(grace)
    assert listed(grace) == {site_id(emu, ACME), site_id(emu, INITECH)}
    assert listed(get_authorize(emu, http)) == {site_id(emu, s) for s in (ACME, GLOBEX, INITECH)}
    with Emulator(consent_user="grace") as as_grace:
        assert listed(get_authorize(as_grace, http)) == listed(grace)
    # A site she cannot reach is refused even when posted by hand.
    refused = decide(emu, http, get_authorize(emu, http, emulator_user="grace").text,
                     site_id(emu, GLOBEX))
    assert refused.status_code == 400 and "location" not in refused.headers


def test_an_app_that_is_not_shared_works_only_for_its_owner(emu, http):
    private = emu.register_client(sharing=False, owner="ada")
    refused = get_authorize(emu, http, private, emulator_user="grace")
    assert_error_page(refused)
    assert "shar" not in page_text(refused).lower()  # generic: no hint at Distribution
    code = consent(emu, http, client=private)  # ada, the owner
    assert token_call(emu, http, "json", code_params(code), private).status_code == 200


def test_a_site_that_blocks_user_installed_apps_needs_its_admin(emu, http):
    blocked = "Your site admin must authorize this app for the site initech.atlassian.net"
    assert_error_page(try_consent(emu, http, site=INITECH), blocked)  # ada: a member only
    code = consent(emu, http, site=INITECH, user="grace")  # grace: the site's admin
    assert token_call(emu, http, "json", code_params(code)).status_code == 200
    code = consent(emu, http, site=INITECH)  # now authorized there, for everyone
    tokens = token_call(emu, http, "json", code_params(code)).json()
    assert me_status(emu, http, tokens["access_token"]) == 200
    # The approval was for that app: a fresh one is blocked again, until the setting changes.
    fresh = emu.register_client()
    assert_error_page(try_consent(emu, http, site=INITECH, client=fresh), blocked)
    assert emu.set_user_installed_apps(INITECH, True)["user_installed_apps"] is True
    code = consent(emu, http, site=INITECH, client=fresh)
    assert token_call(emu, http, "json", code_params(code), fresh).status_code == 200


def test_a_scope_of_an_api_not_added_is_invalid_scope(emu, http):
    identity_only = emu.register_client(apis=("identity",))
    assert get_authorize(emu, http, identity_only, "read:me offline_access").status_code == 200
    assert_error_page(get_authorize(emu, http, identity_only, "read:me read:jira-work"),
                      "read:jira-work", code="invalid_scope")


def test_a_product_the_site_lacks_is_404_and_not_listed(emu, http):
    scopes = "read:jira-work read:confluence-space.summary offline_access"
    login(emu, http, site=ACME, scopes=scopes)
    token = login(emu, http, site=GLOBEX, scopes=scopes)["access_token"]
    resources = api_get(emu, http, "/oauth/token/accessible-resources", token).json()
    by_site = {}
    for entry in resources:
        by_site.setdefault(entry["name"], []).append(set(entry["scopes"]))
    assert by_site[GLOBEX] == [{"read:jira-work"}]
    assert {"read:confluence-space.summary"} in by_site[ACME]
    space = "/wiki/rest/api/space"
    assert api_get(emu, http, f"/ex/confluence/{site_id(emu, GLOBEX)}{space}",
                   token).status_code == 404
    assert api_get(emu, http, f"/ex/confluence/{site_id(emu, ACME)}{space}",
                   token).status_code == 200
    assert api_get(emu, http, f"/ex/jira/{site_id(emu, GLOBEX)}/rest/api/3/project/search",
                   token).status_code == 200
