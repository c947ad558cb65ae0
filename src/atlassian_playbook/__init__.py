"""atlassian-oauth-playbook: from "I need to talk to Atlassian Cloud" to a verified OAuth 2.0 (3LO) connection."""

__version__ = "0.1.0"
