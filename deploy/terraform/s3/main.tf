# An S3 bucket for Arco and one IAM role per component, each allowed only the
# requests that component makes against Arco's key layout (ADR 022; the table of
# who may do what is in docs/operations.md, "Bucket and identities").
#
# Arco's CI has no Terraform binary (and no provider registry): tests/deploy/
# test_terraform_s3.py parses these files with python-hcl2 and checks them against that
# table. `terraform fmt -check` has run on them; `terraform validate` has not (it
# needs the hashicorp/aws provider). Run `terraform init && terraform validate`
# before applying.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.70"
    }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  # Keys as IAM resource patterns: the store's prefix, then the tenant's root.
  # IAM's * also matches "/", so every pattern ends at a fixed suffix or a
  # folder of its own (see ADR 022 for the few places this is coarser than a key).
  root   = "${aws_s3_bucket.arco.arn}/${var.prefix}"
  tenant = "${local.root}tenant=${var.tenant}/"
  ws     = "${local.tenant}workspace=*/"
}

resource "aws_s3_bucket" "arco" {
  bucket = var.bucket
}

resource "aws_s3_bucket_ownership_controls" "arco" {
  bucket = aws_s3_bucket.arco.id
  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs: IAM and the bucket policy decide
  }
}

resource "aws_s3_bucket_public_access_block" "arco" {
  bucket                  = aws_s3_bucket.arco.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# SSE-S3: presigned browser URLs and Iceberg remote-signed requests work without
# KMS grants. With a customer-managed key, every role that reads needs kms:Decrypt
# (the signer too) and every role that writes kms:GenerateDataKey.
resource "aws_s3_bucket_server_side_encryption_configuration" "arco" {
  bucket = aws_s3_bucket.arco.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# Versioning on (ADR 022): no Arco role can overwrite a manifest, state file or
# ledger object (the bucket policy below), but gc and `arco events prune` delete,
# and people make mistakes; a deleted or damaged object comes back from its
# previous version (docs/runbooks/failed-verify.md). Every commit leaves one
# noncurrent version of its pointer and lease (a few hundred bytes each) for
# noncurrent_version_days.
resource "aws_s3_bucket_versioning" "arco" {
  bucket = aws_s3_bucket.arco.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "arco" {
  bucket     = aws_s3_bucket.arco.id
  depends_on = [aws_s3_bucket_versioning.arco]

  # Only old versions and abandoned uploads: no rule ever expires a current object
  # (a rule that deleted a head pointer would stop its domain, runbooks/lost-pointer.md).
  rule {
    id     = "noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  rule {
    id     = "abandoned-multipart-uploads" # Iceberg clients upload data files in parts
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_cors_configuration" "arco" {
  count  = length(var.cors_origins) > 0 ? 1 : 0
  bucket = aws_s3_bucket.arco.id
  cors_rule {
    allowed_origins = var.cors_origins
    allowed_methods = ["GET", "HEAD"]
    allowed_headers = ["Range"]
    expose_headers  = ["Content-Length", "Content-Range", "Accept-Ranges", "ETag"]
    max_age_seconds = 600
  }
}

# TLS only, and Arco's write protocol enforced by S3 itself: a role can only
# create an immutable object (If-None-Match: *) and only create or compare-and-swap
# a mutable one (If-None-Match or If-Match). The denials name Arco's roles, not
# everyone, so an operator can still restore a previous version with CopyObject.
data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.arco.arn, "${aws_s3_bucket.arco.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOldTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.arco.arn, "${aws_s3_bucket.arco.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }

  statement {
    sid     = "ArcoCreateOnly"
    effect  = "Deny"
    actions = ["s3:PutObject"]
    resources = [
      "${local.ws}ledger/*",
      "${local.ws}quarantine/*",
      "${local.ws}snapshots/*",
      "${local.ws}manifests/*/*",
      "${local.ws}assets/*",
      "${local.ws}control/queue/*",
      "${local.ws}control/runs/*.request.json",
      "${local.ws}control/runs/*.cancel.json",
      "${local.ws}control/runs/idempotency/*",
      "${local.ws}control/automation/backfills/*",
      "${local.tenant}_admin/usage/*",
    ]
    principals {
      type        = "AWS"
      identifiers = [for role in aws_iam_role.arco : role.arn]
    }
    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
  }

  statement {
    sid     = "ArcoConditionalOnly"
    effect  = "Deny"
    actions = ["s3:PutObject"]
    resources = [
      "${local.ws}manifests/*.pointer.json",
      "${local.ws}manifests/*.floor.json",
      "${local.ws}locks/*.lock.json",
      "${local.ws}control/runs/*.lease.json",
      "${local.ws}control/automation/state.json",
      "${local.tenant}_admin/quotas.json",
      "${local.tenant}_admin/workspaces/*",
    ]
    principals {
      type        = "AWS"
      identifiers = [for role in aws_iam_role.arco : role.arn]
    }
    # Both keys absent: neither a create nor a compare-and-swap.
    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["true"]
    }
    condition {
      test     = "Null"
      variable = "s3:if-match"
      values   = ["true"]
    }
  }
}

resource "aws_s3_bucket_policy" "arco" {
  bucket     = aws_s3_bucket.arco.id
  policy     = data.aws_iam_policy_document.bucket.json
  depends_on = [aws_s3_bucket_public_access_block.arco]
}

output "bucket" {
  value = aws_s3_bucket.arco.bucket
}

output "store_url" {
  value = "s3://${aws_s3_bucket.arco.bucket}/${var.prefix}"
}

output "roles" {
  value = { for name, role in aws_iam_role.arco : name => role.arn }
}

output "signer_user" {
  value = var.signer_user ? aws_iam_user.signer[0].name : null
}
