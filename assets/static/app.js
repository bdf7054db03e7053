"use strict";
document.getElementById("app").textContent = "cfsslpy web UI";
