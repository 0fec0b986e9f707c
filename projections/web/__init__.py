"""The HTTP face of the read side: read routes, the dashboard, the incident and setup
pages, the status page and feed, and their static files."""
