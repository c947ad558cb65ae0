"""``python -m atlassian_playbook.emulator [--port N] [--auto-consent] [--state FILE]
[--world FILE] [--json]``."""

import argparse

from .server import serve

parser = argparse.ArgumentParser(prog="python -m atlassian_playbook.emulator")
parser.add_argument("--port", type=int, default=0, help="auth server port (api: port + 1)")
parser.add_argument("--auto-consent", action="store_true", help="skip the consent page")
parser.add_argument("--state", default=None, help="share state through this JSON file")
parser.add_argument("--world", default=None, help="users, sites, apps and data (YAML/JSON)")
parser.add_argument("--json", action="store_true", help="print the connection info as JSON")
args = parser.parse_args()
raise SystemExit(serve(port=args.port, auto_consent=args.auto_consent, state_path=args.state,
                       world=args.world, as_json=args.json))
