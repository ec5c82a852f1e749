resource "hcloud_ssh_key" "deploy" {
  name       = "${var.name}-deploy"
  public_key = var.deploy_ssh_key
}

# The provider's firewall in front of the server's own (UFW, from Ansible):
# SSH only from the admin networks, the web from anywhere, ICMP for path MTU.
resource "hcloud_firewall" "filmpicker" {
  name = var.name

  rule {
    description = "SSH from the admin allow-list"
    direction   = "in"
    protocol    = "tcp"
    port        = "22"
    source_ips  = var.admin_allow
  }

  rule {
    description = "HTTP (redirects, ACME challenges)"
    direction   = "in"
    protocol    = "tcp"
    port        = "80"
    source_ips  = ["0.0.0.0/0", "::/0"]
  }

  rule {
    description = "HTTPS"
    direction   = "in"
    protocol    = "tcp"
    port        = "443"
    source_ips  = ["0.0.0.0/0", "::/0"]
  }

  rule {
    description = "ICMP"
    direction   = "in"
    protocol    = "icmp"
    source_ips  = ["0.0.0.0/0", "::/0"]
  }
}

resource "hcloud_server" "filmpicker" {
  name         = var.name
  server_type  = var.server_type
  location     = var.location
  image        = "debian-12"
  ssh_keys     = [hcloud_ssh_key.deploy.id]
  firewall_ids = [hcloud_firewall.filmpicker.id]
  backups      = true

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }

  # The deploy user Ansible logs in as; Ansible does everything else.
  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    deploy_ssh_key = var.deploy_ssh_key
  })

  labels = {
    app = "filmpicker"
  }

  lifecycle {
    ignore_changes = [user_data]
  }
}

data "hetznerdns_zone" "zone" {
  name = var.zone
}

resource "hetznerdns_record" "a" {
  zone_id = data.hetznerdns_zone.zone.id
  name    = var.host
  type    = "A"
  value   = hcloud_server.filmpicker.ipv4_address
  ttl     = 300
}

resource "hetznerdns_record" "aaaa" {
  zone_id = data.hetznerdns_zone.zone.id
  name    = var.host
  type    = "AAAA"
  value   = hcloud_server.filmpicker.ipv6_address
  ttl     = 300
}

# Let's Encrypt only: no other CA may issue for the site.
resource "hetznerdns_record" "caa" {
  zone_id = data.hetznerdns_zone.zone.id
  name    = var.host
  type    = "CAA"
  value   = "0 issue \"letsencrypt.org\""
  ttl     = 3600
}
