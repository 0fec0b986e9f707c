"""The postmortem draft: what it says (analysis), its model, and its Markdown and JSON
renderings. Pure functions of an incident and its services."""
