variable "bucket" {
  type        = string
  description = "Bucket holding Arco's store (catalog, ledger, state, data)"
}

variable "prefix" {
  type        = string
  default     = ""
  description = "The store's prefix inside the bucket: \"\" for s3://BUCKET, \"arco/\" for s3://BUCKET/arco"

  validation {
    condition     = var.prefix == "" || can(regex("^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*/$", var.prefix))
    error_message = "prefix is empty or a key prefix ending with / (no leading /)."
  }
}

variable "tenant" {
  type        = string
  default     = "*"
  description = "Restrict every role to one tenant's keys (tenant=NAME/...), for a deployment serving one tenant; * serves them all"

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
  description = "Origins of the web UI that fetch presigned URLs from the browser (none: no CORS rule)"
}

variable "create_gc_role" {
  type        = bool
  default     = true
  description = "Create the gc role (arco gc, arco events prune): the only role that deletes catalog, ledger or data objects"
}

variable "trusted_principals" {
  type        = map(list(string))
  default     = {}
  description = "IAM principal ARNs that may assume each role, by component (api, compactor, gc, signer). A component not listed trusts this account (delegate with your own policies) unless eks_oidc is set"
}

variable "eks_oidc" {
  type = object({
    provider_arn = string # aws_iam_openid_connect_provider of the cluster
    issuer       = string # the issuer without https://, e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC
    namespace    = string # where deploy/k8s/arco.yaml runs
  })
  default     = null
  description = "Trust the Kubernetes service accounts of deploy/k8s/arco.yaml (IRSA) instead of the account"
}

variable "signer_user" {
  type        = bool
  default     = true
  description = "Create the IAM user arco-signer (the signer role's rights) whose access key the API presigns browser URLs with (ARCO_SIGNER_STORE_URL)"
}
