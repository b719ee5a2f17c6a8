import type { LlmProvider, ProviderConfig } from '../types.js';
export function createAnthropicProvider(config: ProviderConfig): LlmProvider {
  return { kind: 'anthropic', name: config.name, stream: () => { throw new Error('todo'); } };
}
