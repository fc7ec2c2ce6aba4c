/* Subscribes this browser to Web Push (settings page): registers static/sw.js, asks the
   browser for a subscription with the server's VAPID key, and POSTs it with the page's
   CSRF token. Without JavaScript the button stays hidden. */
"use strict";

(function () {
  const button = document.getElementById("push-subscribe");
  const status = document.getElementById("push-status");
  if (!button || !("serviceWorker" in navigator) || !("PushManager" in window)) {
    return;
  }
  button.hidden = false;

  function key(base64url) {
    const padded = base64url + "=".repeat((4 - (base64url.length % 4)) % 4);
    const raw = atob(padded.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }

  function csrf() {
    const field = document.querySelector('input[name="csrf"]');
    return field ? field.value : "";
  }

  async function subscribe() {
    status.textContent = "Abonnement en cours…";
    const registration = await navigator.serviceWorker.register(button.dataset.worker);
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: key(button.dataset.vapid),
    });
    const response = await fetch(button.dataset.action, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify(subscription.toJSON()),
      credentials: "same-origin",
    });
    status.textContent = response.ok
      ? "Cet appareil recevra vos notifications."
      : "L'abonnement a été refusé.";
  }

  button.addEventListener("click", () => {
    subscribe().catch(() => {
      status.textContent = "Votre navigateur n'a pas permis l'abonnement.";
    });
  });
})();
