module keyguard.local/noopwebhook

go 1.26
