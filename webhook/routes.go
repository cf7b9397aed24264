package webhook

import "github.com/labstack/echo/v5"

// Register adds the webhook route.
func (h *Handler) Register(e *echo.Echo) {
	e.POST("/webhooks/gitlab", h.receive)
}
