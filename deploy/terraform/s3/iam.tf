# One role per component. Each policy's statements are named by what they allow,
# in the words of the access table in docs/operations.md ("Bucket and identities"):
#   Read = s3:GetObject (GET and HEAD)    List = s3:ListBucket
#   Create = PUT that must carry If-None-Match (bucket policy ArcoCreateOnly)
#   CompareAndSwap = PUT that must carry If-None-Match or If-Match (ArcoConditionalOnly)
#   Write = unconditional PUT, multipart included    Delete = s3:DeleteObject
# No role may delete an object version, change ACLs, or touch the bucket's settings.
#
# ListBucket is granted on the whole bucket, without an s3:prefix condition: S3
# answers a GET or HEAD of a missing key with 404 only to a caller that may list
# the bucket, and 403 otherwise, and Arco tells "no head pointer yet" and "no lease
# yet" from that 404 (ADR 022).

locals {
  components = var.create_gc_role ? ["api", "compactor", "gc", "signer"] : ["api", "compactor", "signer"]
  # The Kubernetes service account each role is for (deploy/k8s/arco.yaml). The
  # signer mints URLs inside the API process, so the API's account assumes it.
  service_accounts = {
    api       = "arco-api"
    compactor = "arco-compactor"
    gc        = "arco-gc"
    signer    = "arco-api"
  }
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
  policies = {
    api       = data.aws_iam_policy_document.api.json
    compactor = data.aws_iam_policy_document.compactor.json
    gc        = data.aws_iam_policy_document.gc.json
    signer    = data.aws_iam_policy_document.signer.json
  }
}

data "aws_iam_policy_document" "trust" {
  for_each = toset(local.components)

  dynamic "statement" {
    for_each = var.eks_oidc == null ? [] : [var.eks_oidc]
    content {
      sid     = "KubernetesServiceAccount"
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [statement.value.provider_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value.issuer}:sub"
        values   = ["system:serviceaccount:${statement.value.namespace}:${local.service_accounts[each.key]}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${statement.value.issuer}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.eks_oidc == null || contains(keys(var.trusted_principals), each.key) ? [lookup(var.trusted_principals, each.key, [local.account_root])] : []
    content {
      sid     = "Principals"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "AWS"
        identifiers = statement.value
      }
    }
  }
}

resource "aws_iam_role" "arco" {
  for_each             = toset(local.components)
  name                 = "arco-${each.key}"
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "arco" {
  for_each = toset(local.components)
  name     = "arco-${each.key}-store"
  role     = aws_iam_role.arco[each.key].id
  policy   = local.policies[each.key]
}

# The API (arco serve) and the run workers (arco worker; arco daemon / arco tick
# when automation runs): Tier-1 commits (catalog, declared lineage), ledger
# appends (events, runs, audit), run control, tenant administration through the
# API, Iceberg tables (its own metadata files, and what Iceberg clients write
# through its S3 request signer). It also folds executions and lineage (a run's
# end, POST /compaction) and refreshes the search index, never the audit domain.
data "aws_iam_policy_document" "api" {
  statement {
    sid     = "Read"
    actions = ["s3:GetObject"]
    # /readyz reads one key outside every tenant's keys (it never exists: 404).
    resources = ["${local.tenant}*", "${local.root}_arco_readiness_probe"]
  }

  statement {
    sid       = "List"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.arco.arn]
  }

  statement {
    sid     = "Create"
    actions = ["s3:PutObject"]
    resources = [
      "${local.ws}ledger/*",
      "${local.ws}quarantine/executions/*",
      "${local.ws}quarantine/lineage/*",
      "${local.ws}snapshots/catalog/*",
      "${local.ws}snapshots/lineage/*",
      "${local.ws}snapshots/executions/*",
      "${local.ws}snapshots/search/*",
      "${local.ws}manifests/catalog/*",
      "${local.ws}manifests/lineage/*",
      "${local.ws}manifests/executions/*",
      "${local.ws}manifests/search/*",
      "${local.ws}assets/*",
      "${local.ws}control/queue/*",
      "${local.ws}control/runs/*.request.json",
      "${local.ws}control/runs/*.cancel.json",
      "${local.ws}control/runs/idempotency/*",
      "${local.ws}control/automation/backfills/*",
      "${local.tenant}_admin/usage/*",
    ]
  }

  statement {
    sid     = "CompareAndSwap"
    actions = ["s3:PutObject"]
    resources = [
      "${local.ws}manifests/catalog.pointer.json",
      "${local.ws}manifests/lineage.pointer.json",
      "${local.ws}manifests/executions.pointer.json",
      "${local.ws}manifests/search.pointer.json",
      "${local.ws}locks/catalog.lock.json",
      "${local.ws}locks/lineage.lock.json",
      "${local.ws}locks/executions.lock.json",
      "${local.ws}locks/search.lock.json",
      "${local.ws}control/runs/*.lease.json",
      "${local.ws}control/automation/state.json",
      "${local.tenant}_admin/quotas.json",
      "${local.tenant}_admin/workspaces/*",
    ]
  }

  statement {
    sid       = "Write"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${local.ws}warehouse/*"]
  }

  statement {
    sid     = "Delete"
    actions = ["s3:DeleteObject"]
    resources = [
      "${local.ws}control/queue/*",
      "${local.ws}warehouse/*",
    ]
  }
}

# The compactor and the maintenance CronJobs (arco compact, arco verify, arco admin
# usage --measure, arco admin prune-usage): the Tier-2 state writer. Deletes nothing
# but expired per-minute quota counters.
data "aws_iam_policy_document" "compactor" {
  statement {
    sid       = "Read"
    actions   = ["s3:GetObject"]
    resources = ["${local.tenant}*"]
  }

  statement {
    sid       = "List"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.arco.arn]
  }

  statement {
    sid     = "Create"
    actions = ["s3:PutObject"]
    resources = [
      "${local.ws}ledger/audit/*",
      "${local.ws}quarantine/*",
      "${local.ws}snapshots/lineage/*",
      "${local.ws}snapshots/executions/*",
      "${local.ws}snapshots/search/*",
      "${local.ws}snapshots/audit/*",
      "${local.ws}manifests/lineage/*",
      "${local.ws}manifests/executions/*",
      "${local.ws}manifests/search/*",
      "${local.ws}manifests/audit/*",
    ]
  }

  statement {
    sid     = "CompareAndSwap"
    actions = ["s3:PutObject"]
    resources = [
      "${local.ws}manifests/lineage.pointer.json",
      "${local.ws}manifests/executions.pointer.json",
      "${local.ws}manifests/search.pointer.json",
      "${local.ws}manifests/audit.pointer.json",
      "${local.ws}locks/lineage.lock.json",
      "${local.ws}locks/executions.lock.json",
      "${local.ws}locks/search.lock.json",
      "${local.ws}locks/audit.lock.json",
    ]
  }

  statement {
    sid       = "Write"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${local.tenant}_admin/storage.json"]
  }

  statement {
    sid       = "Delete"
    actions   = ["s3:DeleteObject"]
    resources = ["${local.tenant}_admin/usage/*"]
  }
}

# Garbage collection and ledger pruning (arco gc, arco events prune): the only
# role that deletes catalog, ledger or data objects. Even it cannot delete a head
# pointer, a lease or a history floor (manifests/*/* does not match
# manifests/catalog.pointer.json), nor an object version.
data "aws_iam_policy_document" "gc" {
  statement {
    sid       = "Read"
    actions   = ["s3:GetObject"]
    resources = ["${local.tenant}*"]
  }

  statement {
    sid       = "List"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.arco.arn]
  }

  statement {
    sid     = "Create"
    actions = ["s3:PutObject"]
    resources = [
      "${local.ws}ledger/audit/*",
      "${local.ws}snapshots/lineage/*",
      "${local.ws}snapshots/executions/*",
      "${local.ws}snapshots/audit/*",
      "${local.ws}manifests/lineage/*",
      "${local.ws}manifests/executions/*",
      "${local.ws}manifests/audit/*",
    ]
  }

  statement {
    sid     = "CompareAndSwap"
    actions = ["s3:PutObject"]
    resources = [
      "${local.ws}manifests/*.floor.json",
      "${local.ws}manifests/lineage.pointer.json",
      "${local.ws}manifests/executions.pointer.json",
      "${local.ws}manifests/audit.pointer.json",
      "${local.ws}locks/lineage.lock.json",
      "${local.ws}locks/executions.lock.json",
      "${local.ws}locks/audit.lock.json",
    ]
  }

  statement {
    sid     = "Delete"
    actions = ["s3:DeleteObject"]
    resources = [
      "${local.ws}ledger/*",
      "${local.ws}snapshots/*",
      "${local.ws}manifests/*/*",
      "${local.ws}assets/*",
      "${local.ws}warehouse/*",
    ]
  }
}

# The browser signer: S3 checks a presigned URL against the rights of whoever
# signed it, so the signer may read what the browser is given and nothing else
# (ADR 008): state files of the browser's domains and table data. Arco's own
# metadata areas, and the private audit domain, are refused outright.
data "aws_iam_policy_document" "signer" {
  statement {
    sid       = "Read"
    actions   = ["s3:GetObject"]
    resources = ["${local.ws}*"]
  }

  statement {
    sid     = "RefuseMetadata"
    effect  = "Deny"
    actions = ["s3:GetObject"]
    resources = [
      "${local.ws}manifests/*",
      "${local.ws}ledger/*",
      "${local.ws}locks/*",
      "${local.ws}control/*",
      "${local.ws}quarantine/*",
      "${local.ws}snapshots/audit/*",
    ]
  }
}

# The signer as a user with a static access key, for ARCO_SIGNER_STORE_URL: a URL
# presigned with a role's temporary credentials stops working when that session
# ends, whatever its own lifetime, and the API process (one workload identity)
# cannot take the signer role beside its own. Same policy as the signer role. Create
# the key outside Terraform (aws iam create-access-key --user-name arco-signer), so
# the secret never lands in the state.
resource "aws_iam_user" "signer" {
  count = var.signer_user ? 1 : 0
  name  = "arco-signer"
}

resource "aws_iam_user_policy" "signer" {
  count  = var.signer_user ? 1 : 0
  name   = "arco-signer-store"
  user   = aws_iam_user.signer[0].name
  policy = data.aws_iam_policy_document.signer.json
}
