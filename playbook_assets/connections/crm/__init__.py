"""CRM integrations: one module per CRM, each a ``CrmResource``."""
