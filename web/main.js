// The console's entry. It asks for a session (the refresh cookie) and, once signed in, for the
// first data the chat view shows, while the browser is still loading the rest of the modules
// (index.html preloads them all): the first paint of a signed-in chat then waits for one round
// of module loading and one round of API calls, not a chain of each.
import { prefetch, refresh } from './lib/api.js';

const session = refresh().then((signedIn) => {
  if (signedIn) for (const path of ['/v1/me', '/v1/threads?limit=50', '/v1/me/selectable-personas', '/v1/projects?limit=100']) prefetch(path);
  return signedIn;
});
const { start } = await import('./app.js');
start(session);
