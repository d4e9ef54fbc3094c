package server

import (
	"time"

	"github.com/gin-gonic/gin"
)

// observe tells o of each request once it is answered, under its route template.
func observe(o RequestObserver) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		o.ObserveRequest(route, c.Request.Method, c.Writer.Status(), time.Since(start), int64(max(c.Writer.Size(), 0)))
	}
}
