import denoJson from "../deno.json" with { type: "json" };

/** bottle's own version, from deno.json so there is one place to bump it. */
export const VERSION: string = denoJson.version;
