// The README's TypeScript example (section "Admin API", "A typed client"),
// compiled by scripts/contract.sh against a client generated from the
// served OpenAPI document. Keep this file and that README block the same.
import createClient from "openapi-fetch";
import type { paths, components } from "./api";

type Endpoint = components["schemas"]["Endpoint"];
type LogWebhook = components["schemas"]["WebhookLog"];

const api = createClient<paths>({ baseUrl: "http://localhost:8080" });

export async function example(password: string): Promise<Endpoint> {
  const login = await api.POST("/api/v1/auth/login", {
    body: { email: "admin@ethhook.local", password },
  });
  if (login.error) throw new Error(`${login.error.error.code}: ${login.error.error.message}`);
  const headers = { Authorization: `Bearer ${login.data.token}` };

  const app = await api.POST("/api/v1/applications", {
    headers: { ...headers, "Idempotency-Key": "create-shop-1" },
    body: { name: "shop" },
  });
  if (app.error) throw new Error(app.error.error.message);

  // Only url and filter.chains are required; everything else has a default.
  const created = await api.POST("/api/v1/applications/{app_id}/endpoints", {
    params: { path: { app_id: app.data.id } },
    headers,
    body: {
      url: "https://example.com/hooks",
      filter: { chains: [1], events: ["Transfer(address,address,uint256)"], where: ["value >= 1000000000"] },
      confirmations: 3,
    },
  });
  if (created.error) throw new Error(created.error.error.message);
  const secret: string = created.data.secret;
  const schedule: string[] = created.data.retry_schedule; // never null

  // Rotating needs no body; the old secret keeps signing for the overlap.
  await api.POST("/api/v1/applications/{app_id}/endpoints/{endpoint_id}/secret/rotate", {
    params: { path: { app_id: app.data.id, endpoint_id: created.data.id } },
    headers,
  });

  const page = await api.GET("/api/v1/applications/{app_id}/messages", {
    params: { path: { app_id: app.data.id }, query: { state: "dead", limit: 20 } },
    headers,
  });
  if (page.data) for (const m of page.data.data) console.log(m.id, m.state, m.last_status ?? "no answer");

  const replay = await api.POST("/api/v1/applications/{app_id}/endpoints/{endpoint_id}/replay", {
    params: { path: { app_id: app.data.id, endpoint_id: created.data.id } },
    headers,
    body: { since: "2026-11-01T00:00:00Z", only_failed: true },
  });
  if (replay.response.status === 409) console.log("endpoint disabled:", replay.error?.error.message);

  console.log(secret.startsWith("whsec_"), schedule.length);
  return created.data;
}

// A receiver's view of a delivered log (the document's webhooks section).
export function amount(body: LogWebhook): string | undefined {
  const v = body.decoded?.args["value"];
  return typeof v === "string" ? v : undefined;
}
