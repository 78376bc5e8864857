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

variable "prefix" {
  type        = string
  default     = ""
  description = "The store's prefix inside the bucket: \"\" for gs://BUCKET, \"arco/\" for gs://BUCKET/arco"

  validation {
    condition     = var.prefix == "" || can(regex("^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*/$", var.prefix))
    error_message = "prefix is empty or a key prefix ending with / (no leading /)."
  }
}

variable "tenant" {
  type        = string
  default     = "*"
  description = "Restrict every account to one tenant's keys (tenant=NAME/...), for a deployment serving one tenant; * serves them all"

  validation {
    condition     = var.tenant == "*" || can(regex("^[a-z0-9][a-z0-9_-]*$", var.tenant))
    error_message = "tenant is * or a tenant name ([a-z0-9][a-z0-9_-]*)."
  }
}

variable "noncurrent_version_days" {
  type        = number
  default     = 7
  description = "Days an overwritten or deleted object's previous version is kept (restores, runbooks)"
}

variable "cors_origins" {
  type        = list(string)
  default     = []
  description = "Origins of the web UI that fetch signed URLs from the browser (none: no CORS rule)"
}

variable "create_gc_account" {
  type        = bool
  default     = true
  description = "Create the gc account (arco gc, arco events prune): the only one that deletes catalog, ledger or data objects"
}

variable "role_id_prefix" {
  type        = string
  default     = "arco"
  description = "Prefix of the four project-level custom roles (arcoObjectRead, ...); change it for a second deployment in one project"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,40}$", var.role_id_prefix))
    error_message = "role_id_prefix is letters, digits and _ (a custom role id)."
  }
}

variable "gke_namespace" {
  type        = string
  default     = null
  description = "Let the Kubernetes service accounts of deploy/k8s/arco.yaml in this namespace act as the api, compactor and gc accounts (Workload Identity); null: bind them yourself"
}
