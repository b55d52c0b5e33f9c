import type { Schemas } from "../api/client";

// The replies come from the small embedded demo model (no Ollama set up): the page says so.
export function usesDemoModel(health: Pick<Schemas["HealthOut"], "programs"> | null | undefined): boolean {
  return Boolean(health?.programs?.some((program) => program.name === "llm" && program.backend === "embedded"));
}
