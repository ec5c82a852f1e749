variable "hcloud_token" {
  description = "Hetzner Cloud API token (read and write)"
  type        = string
  sensitive   = true
}

variable "hetznerdns_token" {
  description = "Hetzner DNS API token"
  type        = string
  sensitive   = true
}

variable "name" {
  description = "Server name"
  type        = string
  default     = "filmpicker-1"
}

variable "server_type" {
  description = "Hetzner server type: 2 vCPU, 4 GB is enough for the whole stack"
  type        = string
  default     = "cx22"
}

variable "location" {
  description = "Hetzner location"
  type        = string
  default     = "fsn1"
}

variable "zone" {
  description = "DNS zone (managed in Hetzner DNS)"
  type        = string
  default     = "example.org"
}

variable "host" {
  description = "Host name in the zone: the site is https://HOST.ZONE"
  type        = string
  default     = "filmpicker"
}

variable "deploy_ssh_key" {
  description = "Public key of the deploy user (Ansible and CI)"
  type        = string
}

variable "admin_allow" {
  description = "Networks allowed to reach SSH (the same list as Ansible's filmpicker_admin_allow)"
  type        = list(string)
  validation {
    condition     = length(var.admin_allow) > 0
    error_message = "At least one admin network is needed, or nobody can log in."
  }
}
