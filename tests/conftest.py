"""Shared by every test folder: pytest puts this folder on the import path (its default
"prepend" import mode), so helper modules here (`toy_incidents`) import by name from
`tests/simcity` and `tests/agents` alike."""
