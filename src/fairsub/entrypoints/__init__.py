"""The doors into fairsub: the web portal, the CLI, and (later) the JSON API and worker."""
