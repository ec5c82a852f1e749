#!/bin/sh
# RabbitMQ with the application user (RABBITMQ_USER, password from
# $RABBITMQ_PASSWORD_FILE) in a config file only the rabbitmq user reads.
set -eu
: "${RABBITMQ_PASSWORD_FILE:?the password file}"
umask 077
cat >/etc/rabbitmq/rabbitmq.conf <<CONF
listeners.tcp.default = 5672
loopback_users = none
default_user = ${RABBITMQ_USER:-filmpicker}
default_pass = $(head -n1 "$RABBITMQ_PASSWORD_FILE")
default_vhost = /
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
log.console = true
log.console.level = warning
log.file = false
disk_free_limit.absolute = 200MB
prometheus.tcp.port = 15692
CONF
exec rabbitmq-server
