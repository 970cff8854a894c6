// sw.js: the service worker of push notifications. It is served at the
// site's root so that its scope is the whole app. It caches nothing: it
// shows what the server pushes (a title, a short text, the item's link)
// and, on a tap, brings the app to that item, in a window of the app that
// is open or in a new one. Only the link's path is used, on this origin:
// a notification never opens another site.

self.addEventListener('install', () => { self.skipWaiting(); });
self.addEventListener('activate', (event) => { event.waitUntil(self.clients.claim()); });

/** itemPath keeps the path, query and fragment of a link, on this origin. */
function itemPath(link) {
  try {
    const u = new URL(link, self.location.origin);
    return u.pathname + u.search + u.hash;
  } catch {
    return '/';
  }
}

self.addEventListener('push', (event) => {
  let n = {};
  try {
    n = event.data ? event.data.json() : {};
  } catch {
    n = { title: event.data ? event.data.text() : '' };
  }
  const title = typeof n.title === 'string' && n.title ? n.title : 'Dealroom';
  event.waitUntil(self.registration.showNotification(title, {
    body: typeof n.body === 'string' ? n.body : '',
    tag: typeof n.tag === 'string' ? n.tag : undefined,
    icon: '/icon.svg',
    data: { url: itemPath(typeof n.url === 'string' ? n.url : '/') },
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const path = itemPath(event.notification.data?.url || '/');
  const target = new URL(path, self.location.origin).href;
  event.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const win = wins.find((w) => new URL(w.url).origin === self.location.origin);
    if (win) {
      // The open app goes to the item. navigate needs a window this
      // worker controls; with one it does not, a new window is opened.
      let moved = null;
      try {
        moved = await win.navigate(target);
      } catch {
        moved = null;
      }
      if (moved) {
        await moved.focus().catch(() => {});
        return;
      }
    }
    await self.clients.openWindow(target);
  })());
});
