import type { LlmProvider, ProviderConfig } from '../types.js';
export function createOpenAiProvider(config: ProviderConfig): LlmProvider {
  return { kind: 'openai', name: config.name, stream: () => { throw new Error('todo'); } };
}
