"""Knowledge transfer: the Distiller, its adapters, the teacher-output cache."""

from crossdistill.distill.cache import CacheRefused, TeacherCache
from crossdistill.distill.distiller import Distiller, PrepareContext, Term, resolve_terms

__all__ = ["CacheRefused", "Distiller", "PrepareContext", "TeacherCache", "Term", "resolve_terms"]
