// Command ethhook turns EVM contract events into signed HTTPS webhooks.
package main

import "github.com/ethhook/ethhook/app"

func main() { app.Execute() }
