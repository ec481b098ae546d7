"""What every handler shares: settings from the environment, observability, AWS adapters."""
