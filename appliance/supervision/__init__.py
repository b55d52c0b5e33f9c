"""supervisord: the configuration we render, its XML-RPC client, and the process-state event listener."""
