# One service account per component, allowed by IAM Conditions on object names only
# what the access table of docs/operations.md ("Bucket and identities") gives it
# (ADR 022). GCS has four object permissions that matter here, one custom role each:
#   read = storage.objects.get    list = storage.objects.list (the bucket)
#   create = storage.objects.create, which on GCS cannot replace an existing object
#   delete = storage.objects.delete, which replacing an object needs too
# So the table's "create" is create; "cas" (compare-and-swap a head pointer or a
# lease) and "write" are create + delete; "delete" is delete. What GCS IAM cannot
# say, and S3's bucket policy can (see "On GCS" in docs/operations.md): that a
# replacement must carry a precondition (Arco always sends ifGenerationMatch), and
# that an account allowed to replace an object may not simply delete it.

locals {
  # Object names as IAM Conditions see them: projects/_/buckets/BUCKET/objects/KEY.
  objects     = "projects/_/buckets/${var.bucket}/objects/${var.prefix}"
  tenant_root = "${local.objects}tenant=${var.tenant == "*" ? "" : "${var.tenant}/"}"

  # Each key pattern of the access table as CEL on resource.name, below tenant_root.
  # {ws} and {t} are extract() variables (a workspace's, a tenant's name).
  cel = {
    "tenant=*/*"                                             = "true"
    "tenant=*/workspace=*/*"                                 = "resource.name.extract(\"/workspace={ws}/\") != \"\""
    "tenant=*/workspace=*/ledger/*"                          = "resource.name.extract(\"/workspace={ws}/ledger/\") != \"\""
    "tenant=*/workspace=*/ledger/audit/*"                    = "resource.name.extract(\"/workspace={ws}/ledger/audit/\") != \"\""
    "tenant=*/workspace=*/quarantine/*"                      = "resource.name.extract(\"/workspace={ws}/quarantine/\") != \"\""
    "tenant=*/workspace=*/quarantine/executions/*"           = "resource.name.extract(\"/workspace={ws}/quarantine/executions/\") != \"\""
    "tenant=*/workspace=*/quarantine/lineage/*"              = "resource.name.extract(\"/workspace={ws}/quarantine/lineage/\") != \"\""
    "tenant=*/workspace=*/snapshots/*"                       = "resource.name.extract(\"/workspace={ws}/snapshots/\") != \"\""
    "tenant=*/workspace=*/snapshots/catalog/*"               = "resource.name.extract(\"/workspace={ws}/snapshots/catalog/\") != \"\""
    "tenant=*/workspace=*/snapshots/lineage/*"               = "resource.name.extract(\"/workspace={ws}/snapshots/lineage/\") != \"\""
    "tenant=*/workspace=*/snapshots/executions/*"            = "resource.name.extract(\"/workspace={ws}/snapshots/executions/\") != \"\""
    "tenant=*/workspace=*/snapshots/search/*"                = "resource.name.extract(\"/workspace={ws}/snapshots/search/\") != \"\""
    "tenant=*/workspace=*/snapshots/audit/*"                 = "resource.name.extract(\"/workspace={ws}/snapshots/audit/\") != \"\""
    "tenant=*/workspace=*/manifests/*"                       = "resource.name.extract(\"/workspace={ws}/manifests/\") != \"\""
    "tenant=*/workspace=*/manifests/*/*"                     = "(resource.name.extract(\"/workspace={ws}/manifests/\") != \"\" && resource.name.extract(\"/manifests/{domain}/\") != \"\")"
    "tenant=*/workspace=*/manifests/catalog/*"               = "resource.name.extract(\"/workspace={ws}/manifests/catalog/\") != \"\""
    "tenant=*/workspace=*/manifests/lineage/*"               = "resource.name.extract(\"/workspace={ws}/manifests/lineage/\") != \"\""
    "tenant=*/workspace=*/manifests/executions/*"            = "resource.name.extract(\"/workspace={ws}/manifests/executions/\") != \"\""
    "tenant=*/workspace=*/manifests/search/*"                = "resource.name.extract(\"/workspace={ws}/manifests/search/\") != \"\""
    "tenant=*/workspace=*/manifests/audit/*"                 = "resource.name.extract(\"/workspace={ws}/manifests/audit/\") != \"\""
    "tenant=*/workspace=*/manifests/*.floor.json"            = "(resource.name.extract(\"/workspace={ws}/manifests/\") != \"\" && resource.name.endsWith(\".floor.json\"))"
    "tenant=*/workspace=*/manifests/catalog.pointer.json"    = "resource.name.endsWith(\"/manifests/catalog.pointer.json\")"
    "tenant=*/workspace=*/manifests/lineage.pointer.json"    = "resource.name.endsWith(\"/manifests/lineage.pointer.json\")"
    "tenant=*/workspace=*/manifests/executions.pointer.json" = "resource.name.endsWith(\"/manifests/executions.pointer.json\")"
    "tenant=*/workspace=*/manifests/search.pointer.json"     = "resource.name.endsWith(\"/manifests/search.pointer.json\")"
    "tenant=*/workspace=*/manifests/audit.pointer.json"      = "resource.name.endsWith(\"/manifests/audit.pointer.json\")"
    "tenant=*/workspace=*/locks/*"                           = "resource.name.extract(\"/workspace={ws}/locks/\") != \"\""
    "tenant=*/workspace=*/locks/catalog.lock.json"           = "resource.name.endsWith(\"/locks/catalog.lock.json\")"
    "tenant=*/workspace=*/locks/lineage.lock.json"           = "resource.name.endsWith(\"/locks/lineage.lock.json\")"
    "tenant=*/workspace=*/locks/executions.lock.json"        = "resource.name.endsWith(\"/locks/executions.lock.json\")"
    "tenant=*/workspace=*/locks/search.lock.json"            = "resource.name.endsWith(\"/locks/search.lock.json\")"
    "tenant=*/workspace=*/locks/audit.lock.json"             = "resource.name.endsWith(\"/locks/audit.lock.json\")"
    "tenant=*/workspace=*/assets/*"                          = "resource.name.extract(\"/workspace={ws}/assets/\") != \"\""
    "tenant=*/workspace=*/warehouse/*"                       = "resource.name.extract(\"/workspace={ws}/warehouse/\") != \"\""
    "tenant=*/workspace=*/control/*"                         = "resource.name.extract(\"/workspace={ws}/control/\") != \"\""
    "tenant=*/workspace=*/control/queue/*"                   = "resource.name.extract(\"/workspace={ws}/control/queue/\") != \"\""
    "tenant=*/workspace=*/control/runs/*.request.json"       = "(resource.name.extract(\"/workspace={ws}/control/runs/\") != \"\" && resource.name.endsWith(\".request.json\"))"
    "tenant=*/workspace=*/control/runs/*.cancel.json"        = "(resource.name.extract(\"/workspace={ws}/control/runs/\") != \"\" && resource.name.endsWith(\".cancel.json\"))"
    "tenant=*/workspace=*/control/runs/*.lease.json"         = "(resource.name.extract(\"/workspace={ws}/control/runs/\") != \"\" && resource.name.endsWith(\".lease.json\"))"
    "tenant=*/workspace=*/control/runs/idempotency/*"        = "resource.name.extract(\"/workspace={ws}/control/runs/idempotency/\") != \"\""
    "tenant=*/workspace=*/control/automation/backfills/*"    = "resource.name.extract(\"/workspace={ws}/control/automation/backfills/\") != \"\""
    "tenant=*/workspace=*/control/automation/state.json"     = "resource.name.endsWith(\"/control/automation/state.json\")"
    "tenant=*/_admin/usage/*"                                = "resource.name.extract(\"tenant={t}/_admin/usage/\") != \"\""
    "tenant=*/_admin/workspaces/*"                           = "resource.name.extract(\"tenant={t}/_admin/workspaces/\") != \"\""
    "tenant=*/_admin/quotas.json"                            = "resource.name.endsWith(\"/_admin/quotas.json\")"
    "tenant=*/_admin/storage.json"                           = "resource.name.endsWith(\"/_admin/storage.json\")"
  }

  # Who may do what, by key pattern: the access table, as the permissions GCS checks.
  # A condition has at most 12 logical operators (an IAM limit), hence several grants
  # per account and permission.
  grants = {
    # The API (arco serve, arco worker; arco daemon / arco tick when automation runs).
    api-read = { account = "api", permissions = ["read"], except = [], patterns = ["tenant=*/*"] }
    api-state = { account = "api", permissions = ["create"], except = [], patterns = [
      "tenant=*/workspace=*/snapshots/catalog/*",
      "tenant=*/workspace=*/snapshots/lineage/*",
      "tenant=*/workspace=*/snapshots/executions/*",
      "tenant=*/workspace=*/snapshots/search/*",
      "tenant=*/workspace=*/manifests/catalog/*",
      "tenant=*/workspace=*/manifests/lineage/*",
      "tenant=*/workspace=*/manifests/executions/*",
      "tenant=*/workspace=*/manifests/search/*",
    ] }
    api-append = { account = "api", permissions = ["create"], except = [], patterns = [
      "tenant=*/workspace=*/ledger/*",
      "tenant=*/workspace=*/quarantine/executions/*",
      "tenant=*/workspace=*/quarantine/lineage/*",
      "tenant=*/workspace=*/assets/*",
      "tenant=*/_admin/usage/*",
    ] }
    api-control = { account = "api", permissions = ["create"], except = [], patterns = [
      "tenant=*/workspace=*/control/queue/*",
      "tenant=*/workspace=*/control/runs/*.request.json",
      "tenant=*/workspace=*/control/runs/*.cancel.json",
      "tenant=*/workspace=*/control/runs/idempotency/*",
      "tenant=*/workspace=*/control/automation/backfills/*",
    ] }
    api-heads = { account = "api", permissions = ["create", "delete"], except = [], patterns = [
      "tenant=*/workspace=*/manifests/catalog.pointer.json",
      "tenant=*/workspace=*/manifests/lineage.pointer.json",
      "tenant=*/workspace=*/manifests/executions.pointer.json",
      "tenant=*/workspace=*/manifests/search.pointer.json",
      "tenant=*/workspace=*/locks/catalog.lock.json",
      "tenant=*/workspace=*/locks/lineage.lock.json",
      "tenant=*/workspace=*/locks/executions.lock.json",
      "tenant=*/workspace=*/locks/search.lock.json",
    ] }
    api-mutable = { account = "api", permissions = ["create", "delete"], except = [], patterns = [
      "tenant=*/workspace=*/control/runs/*.lease.json",
      "tenant=*/workspace=*/control/automation/state.json",
      "tenant=*/_admin/quotas.json",
      "tenant=*/_admin/workspaces/*",
      "tenant=*/workspace=*/warehouse/*",
    ] }
    api-delete = { account = "api", permissions = ["delete"], except = [], patterns = [
      "tenant=*/workspace=*/control/queue/*",
    ] }

    # The compactor and maintenance CronJobs (arco compact, verify, admin usage
    # --measure, admin prune-usage): the Tier-2 state writer.
    compactor-read = { account = "compactor", permissions = ["read"], except = [], patterns = ["tenant=*/*"] }
    compactor-state = { account = "compactor", permissions = ["create"], except = [], patterns = [
      "tenant=*/workspace=*/ledger/audit/*",
      "tenant=*/workspace=*/quarantine/*",
      "tenant=*/workspace=*/snapshots/lineage/*",
      "tenant=*/workspace=*/snapshots/executions/*",
      "tenant=*/workspace=*/snapshots/search/*",
      "tenant=*/workspace=*/snapshots/audit/*",
      "tenant=*/workspace=*/manifests/lineage/*",
      "tenant=*/workspace=*/manifests/executions/*",
      "tenant=*/workspace=*/manifests/search/*",
      "tenant=*/workspace=*/manifests/audit/*",
    ] }
    compactor-heads = { account = "compactor", permissions = ["create", "delete"], except = [], patterns = [
      "tenant=*/workspace=*/manifests/lineage.pointer.json",
      "tenant=*/workspace=*/manifests/executions.pointer.json",
      "tenant=*/workspace=*/manifests/search.pointer.json",
      "tenant=*/workspace=*/manifests/audit.pointer.json",
      "tenant=*/workspace=*/locks/lineage.lock.json",
      "tenant=*/workspace=*/locks/executions.lock.json",
      "tenant=*/workspace=*/locks/search.lock.json",
      "tenant=*/workspace=*/locks/audit.lock.json",
      "tenant=*/_admin/storage.json",
    ] }
    compactor-delete = { account = "compactor", permissions = ["delete"], except = [], patterns = [
      "tenant=*/_admin/usage/*",
    ] }

    # The browser signer: what a browser may be given, nothing of Arco's metadata
    # areas nor the private audit domain (GCS has no deny in a bucket's policy: the
    # exclusions are part of the condition).
    signer-read = { account = "signer", permissions = ["read"], patterns = ["tenant=*/workspace=*/*"], except = [
      "tenant=*/workspace=*/manifests/*",
      "tenant=*/workspace=*/ledger/*",
      "tenant=*/workspace=*/locks/*",
      "tenant=*/workspace=*/control/*",
      "tenant=*/workspace=*/quarantine/*",
      "tenant=*/workspace=*/snapshots/audit/*",
    ] }

    # Garbage collection and ledger pruning (arco gc, arco events prune): the only
    # account that deletes catalog, ledger or data objects; never a head pointer or
    # a lease of a domain it does not commit, nor the catalog's.
    gc-read = { account = "gc", permissions = ["read"], except = [], patterns = ["tenant=*/*"] }
    gc-state = { account = "gc", permissions = ["create"], except = [], patterns = [
      "tenant=*/workspace=*/ledger/audit/*",
      "tenant=*/workspace=*/snapshots/lineage/*",
      "tenant=*/workspace=*/snapshots/executions/*",
      "tenant=*/workspace=*/snapshots/audit/*",
      "tenant=*/workspace=*/manifests/lineage/*",
      "tenant=*/workspace=*/manifests/executions/*",
      "tenant=*/workspace=*/manifests/audit/*",
    ] }
    gc-heads = { account = "gc", permissions = ["create", "delete"], except = [], patterns = [
      "tenant=*/workspace=*/manifests/*.floor.json",
      "tenant=*/workspace=*/manifests/lineage.pointer.json",
      "tenant=*/workspace=*/manifests/executions.pointer.json",
      "tenant=*/workspace=*/manifests/audit.pointer.json",
      "tenant=*/workspace=*/locks/lineage.lock.json",
      "tenant=*/workspace=*/locks/executions.lock.json",
      "tenant=*/workspace=*/locks/audit.lock.json",
    ] }
    gc-delete = { account = "gc", permissions = ["delete"], except = [], patterns = [
      "tenant=*/workspace=*/ledger/*",
      "tenant=*/workspace=*/snapshots/*",
      "tenant=*/workspace=*/manifests/*/*",
      "tenant=*/workspace=*/assets/*",
      "tenant=*/workspace=*/warehouse/*",
    ] }
  }

  # One conditional binding per grant and permission:
  #   startsWith(tenant root) && (any pattern) [&& !(any exception)]
  bindings = merge([
    for name, grant in local.grants : {
      for permission in grant.permissions : "${name}-${permission}" => {
        account    = grant.account
        permission = permission
        expression = join(" && ", compact([
          "resource.name.startsWith(\"${local.tenant_root}\")",
          "(${join(" || ", [for p in grant.patterns : local.cel[p]])})",
          length(grant.except) == 0 ? "" : "!(${join(" || ", [for p in grant.except : local.cel[p]])})",
        ]))
      }
    } if contains(local.components, grant.account)
  ]...)

  permissions = {
    read   = ["storage.objects.get"]
    list   = ["storage.objects.list"]
    create = ["storage.objects.create"]
    delete = ["storage.objects.delete"]
  }
}

resource "google_project_iam_custom_role" "arco" {
  for_each    = local.permissions
  project     = var.project
  role_id     = "${var.role_id_prefix}Object${title(each.key)}"
  title       = "Arco object ${each.key}"
  description = "One object permission, granted per key pattern by deploy/terraform/gcs"
  permissions = each.value
}

resource "google_storage_bucket_iam_member" "arco" {
  for_each = local.bindings
  bucket   = google_storage_bucket.arco.name
  role     = google_project_iam_custom_role.arco[each.value.permission].name
  member   = "serviceAccount:${google_service_account.arco[each.value.account].email}"
  condition {
    title      = "arco-${each.key}"
    expression = each.value.expression
  }
}

# Listing is a request on the bucket, not on an object name: unconditional. Arco
# lists for compaction, gc, verification and the lost-pointer check (never to read).
resource "google_storage_bucket_iam_member" "list" {
  for_each = toset([for c in local.components : c if c != "signer"])
  bucket   = google_storage_bucket.arco.name
  role     = google_project_iam_custom_role.arco["list"].name
  member   = "serviceAccount:${google_service_account.arco[each.key].email}"
}

# /readyz reads one key outside every tenant's keys (it never exists: GCS answers 404).
resource "google_storage_bucket_iam_member" "readiness_probe" {
  bucket = google_storage_bucket.arco.name
  role   = google_project_iam_custom_role.arco["read"].name
  member = "serviceAccount:${google_service_account.arco["api"].email}"
  condition {
    title      = "arco-api-readiness-probe"
    expression = "resource.name == \"${local.objects}_arco_readiness_probe\""
  }
}
