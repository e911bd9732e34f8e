module wamp-router/interop/nexus-adapter

go 1.22

require github.com/gammazero/nexus/v3 v3.2.0

require (
	github.com/gorilla/websocket v1.5.0 // indirect
	github.com/ugorji/go/codec v1.2.7 // indirect
	golang.org/x/crypto v0.0.0-20221010152910-d6f0a8c073c2 // indirect
)
