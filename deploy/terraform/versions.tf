# One VPS for FilmPicker on Hetzner Cloud, its firewall and its DNS records.
# Not run here: the Terraform binary cannot be downloaded on this machine
# (docs/operations.md "Infrastructure as code" says what was checked).
terraform {
  required_version = ">= 1.5.0"
  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.45"
    }
    hetznerdns = {
      source  = "timohirt/hetznerdns"
      version = "~> 2.2"
    }
  }
}

provider "hcloud" {
  token = var.hcloud_token
}

provider "hetznerdns" {
  apitoken = var.hetznerdns_token
}
