"""TLS between nodes (design §2 [tls], §3 `bazar certs`): the cluster's own CA and
certificates (`certs`), and the SSL settings servers, nodes and tools use (`contexts`)."""
