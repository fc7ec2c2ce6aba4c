/* The space's service worker: shows a Web Push notice. The payload holds only an opaque
   id (no health data, DOMAIN.md §8): the text is fixed and the click opens the space. */
"use strict";

const SPACE = new URL("../", self.location.href).href;

self.addEventListener("push", (event) => {
  let tag = "mss";
  try {
    tag = "mss-" + String((event.data && event.data.json().id) || "");
  } catch (e) {
    /* not JSON: the notice is still shown */
  }
  event.waitUntil(self.registration.showNotification("Mon espace santé", {
    body: "Un nouvel élément vous attend dans votre espace santé.",
    tag: tag,
    lang: "fr",
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(SPACE));
});
