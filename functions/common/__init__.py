"""What every handler shares: settings from the environment, observability, AWS adapters."""

from mediadna.runtime import retain_freed_memory

retain_freed_memory()  # once per execution environment (see mediadna.runtime)
