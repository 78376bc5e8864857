"""Governance kept in the store: tenants, workspaces, quotas and the audit trail.

The audit trail is a Tier-2 ledger of its own (:mod:`~arco.governance.audit`);
tenants and quotas are compare-and-swap documents under ``tenant={t}/_admin/``
(:mod:`~arco.governance.tenants`).
"""
