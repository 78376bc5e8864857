# A GCS bucket for Arco and one service account per component, each allowed only the
# requests that component makes against Arco's key layout: the same access table as
# the S3 module (docs/operations.md, "Bucket and identities"; ADR 022), expressed as
# IAM Conditions on object names in iam.tf.
#
# Arco's CI has no Terraform binary (and no provider registry): tests/deploy/
# test_terraform_gcs.py parses these files with python-hcl2 and checks them against
# that table. `terraform fmt -check` has run on them; `terraform validate` has not
# (it needs the hashicorp/google provider). Run `terraform init && terraform
# validate` before applying.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

locals {
  components = var.create_gc_account ? ["api", "compactor", "gc", "signer"] : ["api", "compactor", "signer"]
  # The Kubernetes service account each GCP account is for (deploy/k8s/arco.yaml).
  # The signer has none: the API process presigns with the signer's key file
  # (ARCO_SIGNER_STORE_URL), as it cannot take a second workload identity.
  service_accounts = {
    api       = "arco-api"
    compactor = "arco-compactor"
    gc        = "arco-gc"
  }
}

resource "google_storage_bucket" "arco" {
  project                     = var.project
  name                        = var.bucket
  location                    = var.location
  uniform_bucket_level_access = true # IAM Conditions need it; no object ACLs
  public_access_prevention    = "enforced"

  # Versioning on (ADR 022): a deleted or replaced object comes back from its
  # previous version (docs/runbooks/failed-verify.md). On GCS this matters more than
  # on S3: an account that may compare-and-swap a head pointer may also delete it.
  versioning {
    enabled = true
  }

  # Only old versions: no rule ever deletes a live object (a deleted head pointer
  # stops its domain, runbooks/lost-pointer.md).
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  dynamic "cors" {
    for_each = length(var.cors_origins) > 0 ? [var.cors_origins] : []
    content {
      origin          = cors.value
      method          = ["GET", "HEAD"]
      response_header = ["Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Range"]
      max_age_seconds = 600
    }
  }
}

resource "google_service_account" "arco" {
  for_each     = toset(local.components)
  project      = var.project
  account_id   = "arco-${each.key}"
  display_name = "Arco ${each.key} (deploy/terraform/gcs)"
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = var.gke_namespace == null ? {} : { for c in local.components : c => local.service_accounts[c] if c != "signer" }
  service_account_id = google_service_account.arco[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project}.svc.id.goog[${var.gke_namespace}/${each.value}]"
}

output "bucket" {
  value = google_storage_bucket.arco.name
}

output "store_url" {
  value = "gs://${google_storage_bucket.arco.name}/${var.prefix}"
}

output "service_accounts" {
  value = { for name, account in google_service_account.arco : name => account.email }
}
