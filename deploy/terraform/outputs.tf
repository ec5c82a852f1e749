output "ipv4" {
  description = "The server's IPv4 address (ansible_host in inventory/production.yml)"
  value       = hcloud_server.filmpicker.ipv4_address
}

output "ipv6" {
  description = "The server's IPv6 address"
  value       = hcloud_server.filmpicker.ipv6_address
}

output "site" {
  description = "The site's address"
  value       = "https://${var.host}.${var.zone}"
}
