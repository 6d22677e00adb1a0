"""Transport adapters: how Slack events reach the runner, apart from what it does with them."""
