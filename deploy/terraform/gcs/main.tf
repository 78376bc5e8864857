# A GCS bucket for Arco and one service account per component, each with only what
# it needs (ADR 019). Checked here by python-hcl2 parsing and structural tests only:
# no terraform/opentofu binary is installable in Arco's CI, so `terraform validate`
# has not run on this file. Run `terraform fmt -check && terraform validate` before use.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 5.0"
    }
  }
}

variable "project" {
  type        = string
  description = "GCP project id"
}

variable "bucket" {
  type        = string
  description = "Bucket holding Arco's store (catalog, ledger, state, data)"
}

variable "location" {
  type    = string
  default = "EU"
}

resource "google_storage_bucket" "arco" {
  project                     = var.project
  name                        = var.bucket
  location                    = var.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Manifests, state files and ledger objects are immutable; a noncurrent version
  # is a deleted or overwritten pointer: keep it a week for restores.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }
}

# The API (and run workers): read everything, create objects, and replace only the
# mutable objects of the protocol - head pointers, leases, run markers, quota counters.
resource "google_service_account" "api" {
  project      = var.project
  account_id   = "arco-api"
  display_name = "Arco API and run workers (read, append, CAS pointers)"
}

# The compactor, GC and maintenance jobs: state writer, may delete (gc, prune).
resource "google_service_account" "compactor" {
  project      = var.project
  account_id   = "arco-compactor"
  display_name = "Arco compactor and maintenance (state writer, gc)"
}

# The browser signer: reads objects and signs GET URLs for them, nothing else.
resource "google_service_account" "signer" {
  project      = var.project
  account_id   = "arco-signer"
  display_name = "Arco signed-URL minter (read only)"
}

resource "google_storage_bucket_iam_member" "api_read" {
  bucket = google_storage_bucket.arco.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.api.email}"
}

resource "google_storage_bucket_iam_member" "api_append" {
  bucket = google_storage_bucket.arco.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_service_account.api.email}"
}

resource "google_storage_bucket_iam_member" "api_replace_mutable" {
  bucket = google_storage_bucket.arco.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.api.email}"
  condition {
    title       = "arco-mutable-objects"
    description = "Head pointers, leases, run markers and admin records only"
    expression  = <<-CEL
      resource.name.endsWith(".pointer.json") ||
      resource.name.endsWith(".lock.json") ||
      resource.name.endsWith(".lease.json") ||
      resource.name.extract("/control/{rest}") != "" ||
      resource.name.extract("/_admin/{rest}") != ""
    CEL
  }
}

resource "google_storage_bucket_iam_member" "compactor_admin" {
  bucket = google_storage_bucket.arco.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.compactor.email}"
}

resource "google_storage_bucket_iam_member" "signer_read" {
  bucket = google_storage_bucket.arco.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.signer.email}"
}

# V4 signing without a key file: the signer signs blobs as itself (IAM signBlob).
resource "google_service_account_iam_member" "signer_signs_as_itself" {
  service_account_id = google_service_account.signer.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.signer.email}"
}

output "bucket" {
  value = google_storage_bucket.arco.name
}

output "service_accounts" {
  value = {
    api       = google_service_account.api.email
    compactor = google_service_account.compactor.email
    signer    = google_service_account.signer.email
  }
}
