"""Live service: ingestion of click, lead and sale events and real-time feeds."""
