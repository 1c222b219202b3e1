"""The Slack bot: a slack-bolt AsyncApp over the shared troubleshooter (``bot.app``), mounted on the HTTP
server (``bot.http.slack_routes``) or run over Socket Mode (``bot.socket``)."""
