"""The patient space (`/espace/`): server-rendered French pages where patients (and their
legal representatives) log in, read and answer their mail, and hold their DMP.

`app.create_space` builds the ASGI app the composition root mounts in the HTTPS server;
`deps` says who is looking (`Viewer`) and checks every form's CSRF token; the services
(`mail`, `record`, `accounts`) decide and never know HTTP; `pages/` are the routes.
"""
