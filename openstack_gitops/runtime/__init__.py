"""What every long-running process needs: structured logs, back-off and deadline polling, HTTP probes."""
