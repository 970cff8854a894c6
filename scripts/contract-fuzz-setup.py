"""Make what scripts/contract-fuzz's Schemathesis run needs to reach the
server's core logic, and print it as schemathesis.toml parameter overrides.

It talks to a running server through the public API only (standard library,
no third-party packages): a room with a member, a task, a message, an
attachment and an invite made by the fuzzing user, and an inbox item of
theirs (another user adds them to a second room).

Environment: DEALROOM_FUZZ_URL (http://127.0.0.1:PORT), DEALROOM_FUZZ_TOKEN
(the fuzzing user's token) and DEALROOM_FUZZ_HELPER_TOKEN (another user's).
"""

import json
import os
import sys
import urllib.error
import urllib.request

BASE = os.environ["DEALROOM_FUZZ_URL"] + "/api/v1"
TOKEN = os.environ["DEALROOM_FUZZ_TOKEN"]
HELPER = os.environ["DEALROOM_FUZZ_HELPER_TOKEN"]

# The member every fixture names; the fuzzing user's room has them.
MEMBER = "fuzz-member"
INVITEE = "buyer@fuzz.example"


def call(method, path, token, body=None, content_type="application/json"):
    data = body
    if body is not None and content_type == "application/json":
        data = json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        sys.exit(f"contract-fuzz-setup: {method} {path}: {e.code} {e.read().decode(errors='replace')}")


def upload(room, name, data):
    boundary = "contract-fuzz-boundary"
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return call("POST", f"/rooms/{room}/attachments", TOKEN, body, f"multipart/form-data; boundary={boundary}")


def main():
    room = call("POST", "/rooms", TOKEN, {
        "name": "Fuzz renewal", "company": "Fuzz Corp", "value": 48000, "currency": "EUR",
        "close_window": "quarter", "tags": ["fuzz"],
    })["id"]
    call("POST", f"/rooms/{room}/members", TOKEN,
         {"user_id": MEMBER, "name": "Fuzz Member", "kind": "staff", "access": "write"})
    task = call("POST", f"/rooms/{room}/tasks", TOKEN,
                {"title": "Security review", "assignees": [MEMBER], "due": "2030-01-15"})["id"]
    msg = call("POST", f"/rooms/{room}/messages", TOKEN,
               {"body": "@Fuzz Member can you answer the questionnaire?", "task_id": task})["id"]
    attachment = upload(room, "notes.txt", b"questionnaire answers\n")["id"]
    invite = call("POST", f"/rooms/{room}/invites", TOKEN, {"email": INVITEE, "access": "write"})

    # An inbox item of the fuzzing user: another user adds them to a room.
    me = call("GET", "/me", TOKEN)
    other = call("POST", "/rooms", HELPER, {"name": "Fuzz partner deal", "company": "Partner"})["id"]
    call("POST", f"/rooms/{other}/members", HELPER,
         {"user_id": me["user_id"], "name": me["name"] or me["user_id"], "kind": "staff", "access": "write"})
    items = call("GET", "/me/inbox", TOKEN)["items"]
    if not items:
        sys.exit("contract-fuzz-setup: the fuzzing user has no inbox item")

    def q(v):
        return json.dumps(v)  # a TOML basic string is a JSON string

    print("[parameters]")
    for name, value in [("path.room", room), ("path.task", task), ("path.msg", msg), ("path.user", MEMBER),
                        ("path.item", items[0]["id"]), ("path.code", invite["code"])]:
        print(f"{q(name)} = {q(value)}")
    for regex, value in [(r"/attachments/\{id\}$", attachment), (r"/invites/\{id\}$", invite["id"])]:
        print()
        print("[[operations]]")
        print(f"include-path-regex = {q(regex)}")
        print(f"parameters = {{ {q('path.id')} = {q(value)} }}")


if __name__ == "__main__":
    main()
